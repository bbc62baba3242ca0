"""A services report too large for one application message, sent in parts (pure).

A report (``NodeReport.to_wire()``) that fits in one message (``MAX_APP_PAYLOAD``) goes
out on ``svc.report`` as before with its generation added (``"g"``, which a peer of an
older version ignores: ``NodeReport.from_wire`` reads only its own keys). A larger
one (about 350 services and up: every configured service is a row of every node's
report) is encoded once as compact JSON and that text is cut into slices of at most
``PART_BYTES`` characters, each sent on its own channel, ``svc.report.part``::

    {"g": generation, "i": index, "n": count, "h": digest, "d": slice}

``g`` numbers the sender's reports (per incarnation; a new number when the content
changes, the same one when the periodic copy repeats it, so a receiver fills a gap from
the copy), ``i`` is 0..n-1, ``h`` the first 16 hex digits of the SHA-256 of the whole
text, the same in every part. The whole text is sliced, not only the service rows: the
admin state (disabled, frozen ... lists of service names) and the ghosts grow with the
service count too, and one validation path (``NodeReport.from_wire``) reads the
assembled report exactly as it reads a single-message one. The text is ASCII (JSON
escapes the rest), and JSON escaping at most doubles a slice, so a part is at most
``2 * PART_BYTES`` plus a small header: always under the limit, typically about 15 KiB.

A receiver (:class:`Assembler`) keeps, per sender, at most one partial report (the
newest generation heard) of at most ``MAX_PARTS`` parts and hands over a report only
when every part of that generation has arrived and the digest matches; until then the
sender's previous complete report stands. A part of a newer generation (or incarnation)
drops the partial one; parts of older or already assembled generations are ignored;
a duplicate is ignored; a part that contradicts the others of its generation is
malformed (``ValueError``) and the partial report is dropped.

At rest a report in parts is not sent again every 2 s (1,000 services: 84 KB to every
member): the periodic copy is ``svc.report.have`` ``{"g", "n", "h"}``, naming the
generation the sender holds. A receiver that has not assembled it (a part was lost, or
it has only started) answers ``svc.report.want`` ``{"g", "i": [indices]}`` to the sender
alone, which sends those parts of that generation to it again (at most once a second
per receiver); the whole report still goes to every member when it changes, and every
``FULL_REFRESH`` seconds (:meth:`Assembler.missing`, :func:`wanted`). A report in one
message is named the same way (``"n": 1``, :func:`have_single`), but only once every
other member of the view has said it reads such a have (a generation in its own
one-message report, or ``"x": 1`` in its have); until then it is repeated whole every
2 s, the repair copy an older version relies on (docs/services-wire.md).

An older peer has no handler for ``svc.report.part``: its services adapter ignores a
channel it does not know (no log line, no error) and keeps whatever complete report it
had from the sender, as it did when such a report was not sent at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clusterd.wire.messages import MAX_APP_PAYLOAD

CH_REPORT_PART = "svc.report.part"
CH_REPORT_HAVE = "svc.report.have"    # sender -> every member: my report is generation g
CH_REPORT_WANT = "svc.report.want"    # receiver -> sender: send me these parts of g again
FULL_REFRESH = 30.0              # seconds between two whole copies of an unchanged report
WANT_EVERY = 1.0                 # seconds: parts resent to one receiver at most this often
PART_BYTES = 12 * 1024           # characters of report text per part (escaped: <= 2x)
MAX_REPORT_SERVICES = 10_000     # what the part cap is sized for
MAX_PARTS = 128                  # 1.5 MiB of report text: 10,000 rows of 150 bytes
MAX_REPORT_BYTES = PART_BYTES * MAX_PARTS
MAX_GENERATION = 2**63 - 1
_HEADER = 96                     # {"g":..,"i":..,"n":..,"h":"..","d":""} at its largest
_G_BYTES = len(',"g":') + 19     # a one-message report's generation at its largest
assert 2 * PART_BYTES + _HEADER < MAX_APP_PAYLOAD


def encode(wire: Mapping[str, Any]) -> str:
    """The report's text as the wire layer encodes a payload (compact, ASCII)."""
    return json.dumps(wire, separators=(",", ":"))


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Built:
    """How one report goes out: ``single`` (the report itself, on ``svc.report``), or
    ``parts`` (on ``svc.report.part``), or neither when ``refused`` (more than
    ``MAX_PARTS`` parts). ``size``: the report's encoded bytes."""

    size: int
    single: Mapping[str, Any] | None = None
    parts: tuple[dict[str, Any], ...] = ()

    @property
    def refused(self) -> bool:
        return self.single is None and not self.parts


def build(wire: Mapping[str, Any], generation: int, text: str | None = None) -> Built:
    """Split a report for sending (see the module docstring). A report in one message
    carries its generation as ``"g"``, after the report's own keys."""
    text = encode(wire) if text is None else text
    size = len(text)           # ASCII: characters are bytes
    if size + _G_BYTES <= MAX_APP_PAYLOAD:
        return Built(size, single={**wire, "g": generation})
    count = -(-size // PART_BYTES)
    if count > MAX_PARTS:
        return Built(size)
    h = digest(text)
    return Built(size, parts=tuple(
        {"g": generation, "i": i, "n": count, "h": h,
         "d": text[i * PART_BYTES:(i + 1) * PART_BYTES]} for i in range(count)))


def _int(payload: Mapping[str, Any], key: str, hi: int) -> int:
    v = payload.get(key)
    if type(v) is not int or not 0 <= v <= hi:
        raise TypeError(f"{key!r} must be an integer in 0..{hi}")
    return v


def have(parts: tuple[dict[str, Any], ...], generation: int) -> dict[str, Any]:
    """The periodic copy of an unchanged report in ``parts``: its generation, part count
    and digest (the parts themselves stay with the sender until someone wants them)."""
    first = parts[0]
    return {"g": generation, "n": first["n"], "h": first["h"]}


def have_single(generation: int, h: str) -> dict[str, Any]:
    """The periodic copy of an unchanged report sent in one message: a have of one part
    (``h``: the digest of that message's text, as ``have`` names a split report's)."""
    return {"g": generation, "n": 1, "h": h}


def have_count(payload: Mapping[str, Any]) -> int:
    """How many parts a ``svc.report.have`` names (1: a report in one message)."""
    if not isinstance(payload, Mapping):
        raise TypeError("a report have must be an object")
    return _int(payload, "n", MAX_PARTS)


def single_have(payload: Mapping[str, Any]) -> int:
    """The generation a have of a one-message report names. Malformed: ``TypeError``."""
    h = payload.get("h")
    if not isinstance(h, str) or len(h) != 16:
        raise TypeError("'h' must be 16 hex digits")
    return _int(payload, "g", MAX_GENERATION)


def single_generation(payload: Mapping[str, Any]) -> int | None:
    """The generation a one-message report carries (None: an older sender that does not
    say, which also does not read a have of such a report). Malformed: ``TypeError``."""
    if not isinstance(payload, Mapping) or "g" not in payload:
        return None
    return _int(payload, "g", MAX_GENERATION)


def wanted(payload: Mapping[str, Any], generation: int, count: int) -> list[int]:
    """The part indices a ``svc.report.want`` asks for, if it asks for the sender's
    current ``generation`` (of ``count`` parts); [] for an older one (the current one
    went out whole when it changed). Malformed: ``TypeError``/``ValueError``."""
    if not isinstance(payload, Mapping):
        raise TypeError("a report want must be an object")
    gen = _int(payload, "g", MAX_GENERATION)
    indices = payload.get("i")
    if not isinstance(indices, list) or not 0 < len(indices) <= MAX_PARTS \
            or not all(type(i) is int and 0 <= i < MAX_PARTS for i in indices):
        raise TypeError(f"'i' must be a list of 1..{MAX_PARTS} part indices")
    if gen != generation:
        return []
    return sorted({i for i in indices if i < count})


@dataclass
class _Partial:
    incarnation: int
    generation: int
    count: int
    digest: str
    parts: dict[int, str] = field(default_factory=dict)


class Assembler:
    """Per sender: the newest partial report and the last one assembled (see the module
    docstring). Memory: at most one partial report per sender, at most
    ``MAX_REPORT_BYTES`` of text."""

    def __init__(self) -> None:
        self._partial: dict[int, _Partial] = {}
        self._done: dict[int, tuple[int, int]] = {}    # sender -> (incarnation, generation)

    def pending(self, src: int) -> tuple[int, int, int] | None:
        """(generation, parts received, part count) of ``src``'s partial report."""
        p = self._partial.get(src)
        return None if p is None else (p.generation, len(p.parts), p.count)

    def missing(self, src: int, incarnation: int, payload: Mapping[str, Any]
                ) -> list[int] | None:
        """For ``src``'s ``svc.report.have``: the parts of the generation it names that
        are not here yet (every part when no partial report of it is held), or None when
        it was assembled already (or is older than what was). Raises ``TypeError`` or
        ``ValueError`` when malformed."""
        if not isinstance(payload, Mapping):
            raise TypeError("a report have must be an object")
        gen = _int(payload, "g", MAX_GENERATION)
        count = _int(payload, "n", MAX_PARTS)
        h = payload.get("h")
        if count < 2:
            raise ValueError(f"a report of {count} parts is not a split report")
        if not isinstance(h, str) or len(h) != 16:
            raise TypeError("'h' must be 16 hex digits")
        key = (incarnation, gen)
        done = self._done.get(src)
        if done is not None and key <= done:
            return None
        p = self._partial.get(src)
        if p is not None and (p.incarnation, p.generation, p.count, p.digest) == (
                incarnation, gen, count, h):
            return [i for i in range(count) if i not in p.parts]
        return list(range(count))

    def forget(self, src: int) -> None:
        """The caller holds no report of ``src`` any more: the next ``have`` wants it."""
        self._done.pop(src, None)

    def single(self, src: int, incarnation: int) -> None:
        """``src`` sent a whole report in one message (it carries no generation): a
        partial report is superseded, and the next complete generation in parts is taken
        even if it was assembled before (a single report reordered past the parts of a
        newer one would otherwise stand until the sender's report changed; this way the
        periodic copy repairs it, as it repairs a lost datagram)."""
        p = self._partial.get(src)
        if p is not None and p.incarnation <= incarnation:
            del self._partial[src]
        done = self._done.get(src)
        if done is not None and done[0] <= incarnation:
            del self._done[src]

    def add(self, src: int, incarnation: int, payload: Mapping[str, Any]
            ) -> dict[str, Any] | None:
        """Take one part; the assembled report (its wire form, unchecked: the caller reads
        it with ``NodeReport.from_wire``) when it completes one, else None. Raises
        ``TypeError``/``ValueError`` for a malformed part."""
        if not isinstance(payload, Mapping):
            raise TypeError("a report part must be an object")
        gen = _int(payload, "g", MAX_GENERATION)
        count = _int(payload, "n", MAX_PARTS)
        index = _int(payload, "i", MAX_PARTS)
        h, data = payload.get("h"), payload.get("d")
        if count < 2 or index >= count:
            raise ValueError(f"part {index} of {count} is not a part of a split report")
        if not isinstance(h, str) or len(h) != 16:
            raise TypeError("'h' must be 16 hex digits")
        if not isinstance(data, str) or not 0 < len(data) <= PART_BYTES:
            raise TypeError(f"'d' must be 1..{PART_BYTES} characters of report text")
        key = (incarnation, gen)
        done = self._done.get(src)
        if done is not None and key <= done:
            return None                  # assembled already, or older than that
        p = self._partial.get(src)
        if p is not None and key < (p.incarnation, p.generation):
            return None                  # superseded by the partial report we have
        if p is None or key > (p.incarnation, p.generation):
            p = self._partial[src] = _Partial(incarnation, gen, count, h)
        if (count, h) != (p.count, p.digest) or p.parts.get(index, data) != data:
            del self._partial[src]
            raise ValueError(f"part {index} of report {gen} contradicts its other parts")
        p.parts[index] = data
        if len(p.parts) < p.count:
            return None
        del self._partial[src]
        self._done[src] = key
        text = "".join(p.parts[i] for i in range(p.count))
        if digest(text) != p.digest:
            raise ValueError(f"report {gen} does not match its digest")
        try:
            wire = json.loads(text)
        except RecursionError:
            raise ValueError(f"report {gen} is nested too deeply") from None
        if not isinstance(wire, dict):
            raise TypeError(f"report {gen} is not an object")
        return wire
