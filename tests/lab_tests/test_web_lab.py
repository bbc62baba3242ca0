"""The web status page in a real browser (issue 17 items 1 and 2), on a lab of its own (3
nodes, prefix rhcg, 198.18.14.0/24; RHC_WEB_LAB_PREFIX/SUBNET move it): SvcLab's
deployment (the daemon's code from a tarball, ``web`` = floating address + nginx on an
ordered domain, real fence_ipmilan), each daemon started with ``--web-user clusterd-web``,
plus a second service ``quiet`` (a no-op script) in a restricted domain {node1, node2};
``clusterd-web`` on every node as the system user ``clusterd-web`` (member of ``haclient``)
with Debian's python3-aiohttp, a users file (admin ``alice``, viewer ``victor``, made by
``clusterd-web-user`` on the node) and a certificate signed by a CA made here.

Debian's chromium, headless, driven by selenium through chromedriver, on node1's page:

  log in as alice: the three members Online, web started on node1;
  relocate web by dragging its handle onto node2's row (pointer events) and confirming:
  the owner changes; back to node1 with the relocate button and the member select;
  relocate quiet onto node3 (outside its restricted domain): the daemon's refusal shown,
  nothing moved; a POST without the CSRF token: 403, nothing moved;
  as victor: no action buttons, a forged POST /action with victor's CSRF token: 403;
  node3's page: wrong passwords until the login is rate limited;
  auth = pam on node2 (a second instance, a real HTTP client): a member of
  hacluster-admin logs in as admin with her unix password, a user in neither group and a
  wrong password are refused;
  node3 powered off: its row goes Offline and its fence appears in the fence history;
  node1 cut off from its peers (node3 is gone): the page says inquorate and an action is
  refused with the daemon's no-quorum message.

The browser trusts no CA here (chromium takes one only through NSS): it runs with
--ignore-certificate-errors, and python's ssl checks separately that each node serves a
certificate that chains to the test CA and names the node (name and address).
Screenshots (login, status, confirm dialog, after the fence) go to $RHC_WEB_SCREENSHOTS
(default: a pytest temporary directory; ``make screenshots`` writes docs/images/web-*.png).
Polls with deadlines (WebDriverWait, SvcLab.wait); asserts no timings.
"""

from __future__ import annotations

import datetime
import html
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from clusterlab import Lab
from test_services_lab import REMOTE, UNIT, SvcLab

pytestmark = pytest.mark.lab

PREFIX = os.environ.get("RHC_WEB_LAB_PREFIX", "rhcg")
SUBNET = os.environ.get("RHC_WEB_LAB_SUBNET", "198.18.14.0/24")
WEB_PORT = 8084
WEB_UNIT = "rhcweb-clusterd-web"
WEB_USER = "clusterd-web"
CONF_DIR = "/etc/rhc-web-test"
SOCKET = f"{REMOTE}/ctl.sock"
USERS = {"alice": ("admin", "alice-Pa55-word"), "victor": ("viewer", "victor-Pa55-word")}
METRICS_TOKEN = "rhcg-metrics-token-0123456789abcdef"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
CSRF_REFUSAL = "it did not carry this session's form token (CSRF)"


class WebLab(SvcLab):
    """SvcLab plus a restricted service and clusterd-web on every node."""

    def __init__(self, lab: Lab, ca: CA) -> None:
        super().__init__(lab)
        self.ca = ca
        n1, n2, _n3 = self.names
        quiet = (f'<failoverdomain name="pair" restricted="1">'
                 f'<failoverdomainnode name="{n1}" priority="1"/>'
                 f'<failoverdomainnode name="{n2}" priority="2"/></failoverdomain>'
                 f'</failoverdomains>')
        assert "</failoverdomains>" in self.conf and "</rm>" in self.conf, \
            "SvcLab's cluster.conf changed shape; adapt the quiet service's edit"
        self.conf = self.conf.replace("</failoverdomains>", quiet, 1).replace(
            "</rm>", '<service name="quiet" domain="pair" recovery="relocate">'
                     '<script name="noop" file="/bin/true"/></service></rm>', 1)

    def address(self, name: str) -> str:
        return self.lab.node(name).address

    def url(self, name: str, path: str = "/") -> str:
        return f"https://{self.address(name)}:{WEB_PORT}{path}"

    def install(self) -> None:
        super().install()
        for name in self.names:
            self.install_web(name)

    def install_web(self, name: str) -> None:
        ex = self.lab.exec
        ex(name, ["sh", "-c", (
            f"systemctl stop {WEB_UNIT} 2>/dev/null; systemctl reset-failed {WEB_UNIT} "
            "2>/dev/null; getent group haclient >/dev/null || groupadd --system haclient; "
            f"getent passwd {WEB_USER} >/dev/null || useradd --system --user-group "
            f"--no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "
            f"--groups haclient {WEB_USER}; "
            f"rm -rf {CONF_DIR} && install -d -m 0750 -o root -g {WEB_USER} {CONF_DIR}")],
           timeout=60)
        cert, key = self.ca.issue(name, self.address(name))
        files = {"cert.pem": (cert + self.ca.cert_pem, "0644"), "key.pem": (key, "0640"),
                 "metrics.token": (METRICS_TOKEN + "\n", "0640"),
                 "web.conf": (self.web_conf(name), "0644")}
        for fname, (text, mode) in files.items():
            ex(name, ["sh", "-c", (f"umask 077 && cat > {CONF_DIR}/{fname} && chown root:{WEB_USER} "
                                   f"{CONF_DIR}/{fname} && chmod {mode} {CONF_DIR}/{fname}")],
               input=text)
        for user, (role, password) in USERS.items():
            out = ex(name, ["env", f"PYTHONPATH={REMOTE}", "python3", "-c",
                            "import sys; from clusterd.web.users import main; sys.exit(main())",
                            "--file", f"{CONF_DIR}/users", "add", user, "--role", role],
                     input=password + "\n", check=False, timeout=60)
            assert out.returncode == 0, f"clusterd-web-user add {user}: {out.stderr}"
        ex(name, ["sh", "-c", (f"chown root:{WEB_USER} {CONF_DIR}/users && "
                              f"chmod 0640 {CONF_DIR}/users")])
        listed = ex(name, ["env", f"PYTHONPATH={REMOTE}", "python3", "-c",
                           "import sys; from clusterd.web.users import main; sys.exit(main())",
                           "--file", f"{CONF_DIR}/users", "list"]).stdout
        for user, (role, password) in USERS.items():
            assert user in listed and role in listed, listed
            assert password not in listed
        check = ex(name, ["env", f"PYTHONPATH={REMOTE}", "python3", "-c",
                          "import sys; from clusterd.web.cli import main; sys.exit(main())",
                          "--config", f"{CONF_DIR}/web.conf", "--check"],
                   check=False, timeout=60)
        # --check as root reads everything; the service itself refuses root
        assert check.returncode == 0, f"clusterd-web --check: {check.stdout}{check.stderr}"

    def web_conf(self, name: str) -> str:
        return (f"[web]\nlisten = {self.address(name)}\nport = {WEB_PORT}\n"
                f"certificate = {CONF_DIR}/cert.pem\nkey = {CONF_DIR}/key.pem\n"
                f"auth = file\nusers_file = {CONF_DIR}/users\ncontrol_socket = {SOCKET}\n"
                f"metrics_token_file = {CONF_DIR}/metrics.token\n")

    def start(self, name: str) -> None:
        """SvcLab.start with the web service's user as the daemon's trusted proxy."""
        self.lab.exec(name, ["systemd-run", f"--unit={UNIT}", "--collect",
                             "--property=KillMode=process",
                             f"--setenv=PYTHONPATH={REMOTE}", "python3", "-m",
                             "clusterd.cli.clusterd", "--foreground", "--config",
                             f"{REMOTE}/cluster.conf", "--authkey", f"{REMOTE}/authkey",
                             "--node", name, "--control-socket", SOCKET,
                             "--state-dir", f"{REMOTE}/state", "--web-user", WEB_USER])

    def start_web(self, name: str) -> None:
        self.lab.exec(name, ["systemd-run", f"--unit={WEB_UNIT}", "--collect",
                             f"--uid={WEB_USER}", f"--gid={WEB_USER}",
                             "--property=SupplementaryGroups=haclient",
                             "--property=NoNewPrivileges=yes",
                             f"--setenv=PYTHONPATH={REMOTE}", "--setenv=PYTHONDONTWRITEBYTECODE=1",
                             "python3", "-c",
                             "import sys; from clusterd.web.cli import main; sys.exit(main())",
                             "--config", f"{CONF_DIR}/web.conf"])

    def web_journal(self, name: str) -> str:
        return self.lab.exec(name, ["journalctl", "-u", WEB_UNIT, "--no-pager", "-o", "cat"],
                             check=False, timeout=60).stdout

    def https_ok(self, name: str) -> bool:
        try:
            with urllib.request.urlopen(self.url(name, "/login"), timeout=2,
                                        context=self.ca.context()) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def served_certificate(self, name: str) -> dict:
        """The peer certificate, verified against the test CA and the node's address."""
        ctx = self.ca.context()
        with socket.create_connection((self.address(name), WEB_PORT), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname=self.address(name)) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3"), tls.version()
            return tls.getpeercert()

    def metrics(self, name: str, token: str | None) -> tuple[int, str, str]:
        req = urllib.request.Request(self.url(name, "/metrics"))
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10, context=self.ca.context()) as r:
                return r.status, r.headers.get("Content-Type", ""), r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Content-Type", ""), err.read().decode()

    def owner_of(self, service: str, via: str) -> str | None:
        out = self.cli(via, "clustat", "--format", "json")
        if out.returncode:
            return None
        found = [s for s in json.loads(out.stdout)["services"] if s["name"] == service]
        return found[0]["owner"] if found and found[0]["state"] == "started" else None


class CA:
    """A throwaway cluster CA (cryptography) and certificates for the nodes."""

    def __init__(self, directory: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        self._x509, self._hashes, self._ser, self._ec, self._oid = \
            x509, hashes, serialization, ec, NameOID
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rhcg test cluster CA")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(hours=1))
                     .not_valid_after(now + datetime.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                                  False, False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()
        self.path = directory / "ca.pem"
        self.path.write_text(self.cert_pem)

    def issue(self, node: str, address: str) -> tuple[str, str]:
        x509, ser, oid = self._x509, self._ser, self._oid
        key = self._ec.generate_private_key(self._ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(oid.COMMON_NAME, node)]))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName(node), x509.IPAddress(ipaddress.ip_address(address))]),
                    critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .sign(self.key, self._hashes.SHA256()))
        return (cert.public_bytes(ser.Encoding.PEM).decode(),
                key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                                  ser.NoEncryption()).decode())

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.path))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx


# -- the browser ---------------------------------------------------------------------------

def chromium(user_data_dir: str) -> Any:
    """Debian's chromium, headless, through Debian's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-extensions",
                "--ignore-certificate-errors", "--window-size=1280,900",
                f"--user-data-dir={user_data_dir}"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


class Page:
    """One browser on the web pages of the lab's nodes, with the contract's hooks."""

    def __init__(self, driver: Any, web: WebLab, shots: Path) -> None:
        self.d, self.web, self.shots = driver, web, shots

    # -- waiting and finding ------------------------------------------------------------
    def until(self, what: str, probe: Callable[[], Any], timeout: float = 30.0) -> Any:
        from selenium.common.exceptions import (
            NoSuchElementException,
            StaleElementReferenceException,
        )
        from selenium.webdriver.support.ui import WebDriverWait
        return WebDriverWait(self.d, timeout, poll_frequency=0.2, ignored_exceptions=(
            NoSuchElementException, StaleElementReferenceException)).until(
            lambda _d: probe(), message=f"{what} (page: {self.d.current_url})")

    def css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By
        return self.d.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By
        return self.d.find_elements(By.CSS_SELECTOR, selector)

    def shot(self, name: str) -> None:
        self.shots.mkdir(parents=True, exist_ok=True)
        self.d.save_screenshot(str(self.shots / f"web-{name}.png"))

    # -- what the page says ---------------------------------------------------------------
    def member_state(self, node: str) -> str:
        return self.css(f'table#members tr[data-member="{node}"] .state').text.strip()

    def service_row(self, service: str) -> Any:
        return self.css(f'table#services tr[data-service="{service}"]')

    def owner(self, service: str) -> str:
        row = self.service_row(service)
        return row.get_attribute("data-owner") if row.get_attribute("data-state") == \
            "started" else ""

    def live(self) -> bool:
        return self.css("#live").get_attribute("data-connected") == "true"

    # -- doing ------------------------------------------------------------------------------
    def open(self, node: str, path: str = "/") -> None:
        self.d.get(self.web.url(node, path))

    def login(self, node: str, user: str, password: str, *, shot: str | None = None) -> None:
        self.open(node, "/login")
        self.until("the login form", lambda: self.css("form#login").is_displayed())
        if shot:
            self.shot(shot)
        self.css('form#login input[name="username"]').send_keys(user)
        self.css('form#login input[name="password"]').send_keys(password)
        self.css("#login-submit").click()

    def logged_in(self, node: str, user: str, role: str) -> None:
        self.until(f"{user} logged in on {node}'s page",
                   lambda: self.css("#user").text.strip() == f"{user} ({role})")
        self.until("the live stream connected", self.live)

    def login_error(self) -> str:
        found = self.all("#login-error")
        return found[0].text.strip() if found else ""

    def logout(self) -> None:
        self.d.delete_all_cookies()

    def confirm(self, expect_command: str, shot: str | None = None,
                member: str | None = None) -> None:
        self.until("the confirmation dialog", lambda: self.css("dialog#confirm")
                   .get_attribute("open") is not None)
        command = self.css("#confirm-command").text.strip()
        assert expect_command in command, command
        if member is not None:
            from selenium.webdriver.support.ui import Select
            select = Select(self.css('dialog#confirm select[name="member"]'))
            values = [o.get_attribute("value") for o in select.options]
            if member in values:
                select.select_by_value(member)
            else:
                select.select_by_visible_text(member)
            self.until("the command naming the member", lambda: expect_command in
                       self.css("#confirm-command").text and member in
                       self.css("#confirm-command").text)
        if shot:
            self.shot(shot)
        self.css("#confirm-ok").click()

    def result(self, since: str) -> tuple[bool, str]:
        """The #result shown after an action (its text differs from ``since``)."""
        def shown() -> tuple[bool, str] | None:
            el = self.all("#result")
            if not el or not el[0].text.strip() or el[0].text.strip() == since:
                return None
            return el[0].get_attribute("data-ok") == "true", el[0].text.strip()
        return self.until("the action's result", shown, timeout=60)

    def result_text(self) -> str:
        el = self.all("#result")
        return el[0].text.strip() if el else ""

    def drag(self, handle_css: str, target_css: str) -> None:
        """Pointer-event drag (pointerdown, moves, pointerup), as a mouse or a finger."""
        from selenium.webdriver.common.action_chains import ActionChains
        handle, target = self.css(handle_css), self.css(target_css)
        (ActionChains(self.d).click_and_hold(handle).move_by_offset(4, 4)
         .move_by_offset(8, 8).move_to_element(target).release().perform())

    def csrf_token(self) -> str:
        return self.d.execute_script(
            "const m = document.querySelector('meta[name=\"csrf-token\"]');"
            "if (m) return m.content;"
            "const i = document.querySelector('input[name=\"csrf\"]');"
            "return i ? i.value : '';")

    def post(self, path: str, form: dict[str, str], token: str | None) -> tuple[int, str]:
        """fetch() from the page (same origin, the session's cookie)."""
        out = self.d.execute_async_script(
            "const [path, form, token, done] = arguments;"
            "const headers = {'Content-Type': 'application/x-www-form-urlencoded'};"
            "if (token) headers['X-CSRF-Token'] = token;"
            "fetch(path, {method: 'POST', headers, body: new URLSearchParams(form),"
            "             redirect: 'manual', credentials: 'same-origin'})"
            "  .then(r => r.text().then(t => done([r.status, t])))"
            "  .catch(e => done([0, String(e)]));", path, form, token)
        return int(out[0]), html.unescape(out[1])


# -- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebLab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: run make setup (chromium, chromium-driver)")
    ca = CA(tmp_path_factory.mktemp("web-ca"))
    lab = Lab.up(nodes=3, prefix=PREFIX, subnet=SUBNET)
    try:
        s = WebLab(lab, ca)
        s.install()
        for name in s.names:
            s.start(name)
            s.start_web(name)
        for name in s.names:
            try:
                s.wait(f"{name}'s web page answering over HTTPS", lambda n=name: s.https_ok(n),
                       timeout=60)
            except Exception as exc:
                raise AssertionError(f"{name}: {s.web_journal(name)[-3000:]}") from exc
        n1, n2, _n3 = s.names
        s.wait("web started on node1", lambda: s.owner(n2) == n1, timeout=120)
        s.wait("quiet started", lambda: s.owner_of("service:quiet", n1) in (n1, n2),
               timeout=60)
        yield s
    finally:
        lab.down()


@pytest.fixture(scope="module")
def page(web: WebLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    shots = Path(os.environ.get("RHC_WEB_SCREENSHOTS") or tmp_path_factory.mktemp("web-shots"))
    profile = tempfile.mkdtemp(prefix="rhcg-chromium-")
    driver = chromium(profile)
    try:
        yield Page(driver, web, shots)
    finally:
        driver.quit()
        subprocess.run(["rm", "-rf", profile], check=False)


# -- the scenarios (in this order, on one lab) ------------------------------------------------

def test_every_node_serves_a_certificate_of_the_cluster_ca_naming_it(web: WebLab) -> None:
    for name in web.names:
        cert = web.served_certificate(name)
        sans = {v for _k, v in cert["subjectAltName"]}
        assert {name, web.address(name)} <= sans, cert["subjectAltName"]
        uid = int(web.lab.exec(name, ["sh", "-c", (f"systemctl show -p MainPID --value {WEB_UNIT}"
                                      " | xargs -I{} stat -c %u /proc/{}")]).stdout.strip())
        assert uid == int(web.lab.exec(name, ["id", "-u", WEB_USER]).stdout.strip()), \
            "clusterd-web does not run as its own user"


def test_metrics_answer_prometheus_text_to_the_token_only(web: WebLab) -> None:
    n1 = web.names[0]
    status, ctype, body = web.metrics(n1, METRICS_TOKEN)
    assert status == 200 and ctype.startswith("text/plain"), (status, ctype, body[:300])
    assert "# TYPE " in body and "# HELP " in body, body[:500]
    status, _ctype, _body = web.metrics(n1, "not-the-token")
    assert status in (401, 403), status
    status, _ctype, _body = web.metrics(n1, None)
    assert status in (401, 403), status


def test_alice_sees_three_members_online_and_web_started(web: WebLab, page: Page) -> None:
    n1, n2, n3 = web.names
    page.login(n1, "alice", USERS["alice"][1], shot="login")
    page.logged_in(n1, "alice", "admin")
    page.until("three members Online", lambda: [page.member_state(n) for n in web.names]
               == ["Online"] * 3)
    page.until("web started on node1", lambda: page.owner("service:web") == n1)
    assert page.css("#quorum").get_attribute("data-quorate") == "true"
    assert page.css("#cluster-name").text.strip() == "svclab"
    assert page.all('tr[data-service="service:web"] button[data-action="relocate"]')
    candidates = page.service_row("service:quiet").find_element(
        "css selector", ".candidates").text
    assert n3 in candidates, candidates          # the page says why node3 cannot run quiet
    page.shot("status")
    assert {n1, n2, n3} <= {r.get_attribute("data-member")
                            for r in page.all("table#members tr[data-member]")}


def test_the_page_fits_a_phone(web: WebLab, page: Page) -> None:
    """At 360 px the page itself never scrolls sideways (wide tables scroll inside their
    own box), and the service's buttons stay reachable."""
    page.d.set_window_size(360, 780)
    try:
        page.until("the narrow layout", lambda: page.d.execute_script(
            "return window.innerWidth") <= 360)
        page.open(web.names[0])
        page.logged_in(web.names[0], "alice", "admin")
        wide = page.d.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth];")
        assert wide[0] <= wide[1], f"the page is {wide[0]} px wide in a {wide[1]} px window"
        button = page.css('tr[data-service="service:web"] button[data-action="relocate"]')
        page.d.execute_script("arguments[0].scrollIntoView({block: 'center', "
                              "inline: 'center'});", button)
        assert button.is_displayed()
        page.d.execute_script("window.scrollTo(0, 0);")
        page.shot("phone")
    finally:
        page.d.set_window_size(1280, 900)


def test_relocate_web_by_drag_and_back_with_the_button(web: WebLab, page: Page) -> None:
    n1, n2, _n3 = web.names
    before = page.result_text()
    page.drag('tr[data-service="service:web"] .drag', f'tr[data-member="{n2}"]')
    page.confirm(f"clusvcadm -r web -m {n2}", shot="confirm")
    ok, text = page.result(before)
    assert ok, text
    assert "clusvcadm -r web -m " + n2 in text, text
    page.until("the page shows web on node2", lambda: page.owner("service:web") == n2,
               timeout=60)
    assert web.owner(n1) == n2                            # what clustat says too
    web.wait("web answering from node2", lambda: web.answer() == n2, timeout=30)

    before = page.result_text()
    page.css('tr[data-service="service:web"] button[data-action="relocate"]').click()
    page.confirm("clusvcadm -r web", member=n1)
    ok, text = page.result(before)
    assert ok, text
    page.until("the page shows web back on node1", lambda: page.owner("service:web") == n1,
               timeout=60)
    assert web.owner(n2) == n1
    journal = web.journal_unix(n1, "via web") + web.journal_unix(n2, "via web")
    assert journal, "the daemons logged no action 'by alice (admin) via web'"


def test_relocation_outside_the_restricted_domain_is_refused(web: WebLab, page: Page) -> None:
    n1, _n2, n3 = web.names
    where = web.owner_of("service:quiet", n1)
    assert where in web.names[:2], where
    cli = web.cli(n1, "clusvcadm", "-r", "quiet", "-m", n3)   # what the daemon says
    assert cli.returncode != 0, cli.stdout
    refusal = (cli.stderr or cli.stdout).strip().splitlines()[-1]
    before = page.result_text()
    page.drag('tr[data-service="service:quiet"] .drag', f'tr[data-member="{n3}"]')
    page.confirm(f"clusvcadm -r quiet -m {n3}")
    ok, text = page.result(before)
    assert not ok, text
    words = refusal.split(": ", 1)[-1]            # clusvcadm's prefix off: the daemon's words
    assert words in text, (refusal, text)
    assert web.owner_of("service:quiet", n1) == where


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
        web: WebLab, page: Page) -> None:
    n1, n2, _n3 = web.names
    form = {"action": "relocate", "service": "service:web", "member": n2}
    status, body = page.post("/action", form, token=None)
    assert status == 403, (status, body[:500])
    assert CSRF_REFUSAL in body, body[:500]
    status, body = page.post("/action", form, token="not-this-sessions-token")
    assert status == 403, (status, body[:500])
    assert web.owner(n2) == n1, "web moved although the request was refused"


def test_a_viewer_has_no_buttons_and_a_forged_action_is_refused(
        web: WebLab, page: Page) -> None:
    n1, n2, _n3 = web.names
    page.logout()
    page.login(n1, "victor", USERS["victor"][1])
    page.logged_in(n1, "victor", "viewer")
    page.until("three members shown", lambda: len(page.all("table#members tr[data-member]"))
               >= 3)
    assert page.all("button[data-action]") == [], "a viewer sees action buttons"
    token = page.csrf_token()
    assert token, "no CSRF token on the viewer's page (meta csrf-token or input csrf)"
    status, body = page.post("/action", {"action": "relocate", "service": "service:web",
                                         "member": n2, "csrf": token}, token=token)
    assert status == 403, (status, body[:500])
    assert "Only administrators can change the cluster; you are logged in as victor " \
           "(viewer)" in body, body[:500]
    assert web.owner(n2) == n1
    page.logout()


def test_wrong_passwords_are_rate_limited(web: WebLab, page: Page) -> None:
    n3 = web.names[2]                     # node3's service: node1's limits stay untouched
    said: list[str] = []
    for attempt in range(12):
        page.login(n3, "alice", f"wrong-{attempt}")
        page.until("a login error", lambda: page.login_error() != "")
        said.append(page.login_error())
        if "Too many failed logins for alice" in said[-1]:
            break
    assert "Too many failed logins for alice" in said[-1], said
    assert 3 <= len(said) <= 11, said
    # refused without checking the password: the right one is refused too, for now
    page.login(n3, "alice", USERS["alice"][1])
    page.until("a login error", lambda: page.login_error() != "")
    assert "Too many failed logins for alice" in page.login_error()


PAM_PORT = 8085
PAM_UNIT = "rhcweb-clusterd-web-pam"
PAM_USERS = {"paula": ("hacluster-admin", "paula-Pa55-word"),   # admin by her group
             "oscar": ("users", "oscar-Pa55-word")}              # in neither group
PAM_STACK = "@include common-auth\n@include common-account\n"   # Debian's, as the role's


def _pam_login(web: WebLab, name: str, user: str, password: str) -> tuple[int, str]:
    """Log in over HTTPS with a real HTTP client (urllib, cookies, the login form token,
    the certificate checked against the CA): (status, page text) after the redirects."""
    import http.cookiejar
    import re
    base = f"https://{web.address(name)}:{PAM_PORT}"
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=web.ca.context()),
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with opener.open(f"{base}/login", timeout=10) as r:
        token = re.search(r'name="csrf" value="([^"]+)"', r.read().decode()).group(1)
    body = urllib.parse.urlencode({"username": user, "password": password,
                                   "csrf": token}).encode()
    req = urllib.request.Request(f"{base}/login", data=body, headers={"Origin": base})
    try:
        with opener.open(req, timeout=30) as r:
            return r.status, html.unescape(r.read().decode())
    except urllib.error.HTTPError as err:
        return err.code, html.unescape(err.read().decode())


def test_pam_logins_take_the_role_from_the_users_groups(web: WebLab) -> None:
    """auth = pam on node2 (a second clusterd-web on port 8085): python-pam (the pinned
    wheel's module, copied to the node) checks the password with the node's own PAM stack
    (pam_unix; the service gets the shadow group, as the role gives it); a member of
    hacluster-admin logs in as admin, a user in neither group is refused with the right
    password, a wrong password is refused."""
    import pam as pam_module
    n2 = web.names[1]
    ex = web.lab.exec
    src = Path(pam_module.__file__).parent
    for f in sorted(src.glob("*.py")):
        ex(n2, ["sh", "-c", f"mkdir -p {REMOTE}/pam && cat > {REMOTE}/pam/{f.name}"],
           input=f.read_text())
    ex(n2, ["sh", "-c", "getent group hacluster-admin >/dev/null || groupadd hacluster-admin"])
    for user, (group, password) in PAM_USERS.items():
        ex(n2, ["sh", "-c", (f"id {user} >/dev/null 2>&1 || useradd --no-create-home "
                            f"--groups {group} {user}; chpasswd")], input=f"{user}:{password}\n")
    ex(n2, ["sh", "-c", "cat > /etc/pam.d/clusterd-web"], input=PAM_STACK)
    conf = (web.web_conf(n2).replace(f"port = {WEB_PORT}", f"port = {PAM_PORT}")
            .replace("auth = file", "auth = pam\npam_admin_group = hacluster-admin\n"
                                    "pam_viewer_group = haclient"))
    ex(n2, ["sh", "-c", f"cat > {CONF_DIR}/web-pam.conf"], input=conf)
    ex(n2, ["systemd-run", f"--unit={PAM_UNIT}", "--collect", f"--uid={WEB_USER}",
            f"--gid={WEB_USER}", "--property=SupplementaryGroups=haclient shadow",
            "--property=NoNewPrivileges=yes", f"--setenv=PYTHONPATH={REMOTE}",
            "--setenv=PYTHONDONTWRITEBYTECODE=1", "python3", "-c",
            "import sys; from clusterd.web.cli import main; sys.exit(main())",
            "--config", f"{CONF_DIR}/web-pam.conf"])
    try:
        def answering() -> bool:
            try:
                return _pam_login(web, n2, "nobody-here", "x")[0] == 401
            except OSError:
                return False
        web.wait("the PAM page answering", answering, timeout=60)
        status, text = _pam_login(web, n2, "paula", PAM_USERS["paula"][1])
        assert status == 200 and "paula (admin)" in text, (status, text[-500:])
        status, text = _pam_login(web, n2, "paula", "not-her-password")
        assert status == 401 and "Wrong user name or password." in text, status
        status, text = _pam_login(web, n2, "oscar", PAM_USERS["oscar"][1])
        assert status == 401 and "oscar (" not in text, status
        journal = web.lab.exec(n2, ["journalctl", "-u", PAM_UNIT, "--no-pager", "-o", "cat"],
                               check=False, timeout=60).stdout
        assert "login by paula (admin) from" in journal, journal[-2000:]
        assert "the password is right but the user is in neither hacluster-admin (admin) " \
               "nor haclient (viewer)" in journal, journal[-2000:]
        assert PAM_USERS["paula"][1] not in journal and PAM_USERS["oscar"][1] not in journal
    finally:
        ex(n2, ["sh", "-c", f"systemctl stop {PAM_UNIT} 2>/dev/null; true"], check=False)


def test_a_powered_off_node_goes_offline_and_its_fence_shows(web: WebLab, page: Page) -> None:
    n1, n2, n3 = web.names
    page.logout()
    page.login(n1, "alice", USERS["alice"][1])
    page.logged_in(n1, "alice", "admin")
    page.until("no fence of node3 yet", lambda: not page.all(
        f'table#fence-history tr.fence[data-node="{n3}"]'))
    web.lab.power(n3, "off")
    page.until("node3 Offline on the page", lambda: page.member_state(n3) == "Offline",
               timeout=60)
    row = page.until("node3's fence in the fence history", lambda: page.all(
        f'table#fence-history tr.fence[data-node="{n3}"]'), timeout=90)[0]
    assert row.text.strip(), "an empty fence row"
    assert page.css(f'tr[data-member="{n3}"]').get_attribute("data-state") == "offline"
    assert [page.member_state(n) for n in (n1, n2)] == ["Online", "Online"]
    page.d.execute_script("arguments[0].scrollIntoView({block: 'center'});", row)
    page.shot("fenced")


def test_an_action_while_inquorate_is_refused_with_the_daemons_words(
        web: WebLab, page: Page) -> None:
    n1, _n2, _n3 = web.names
    web.wait("node3 fenced (off or rebooted without clusterd)", lambda: web.members(n1)
             == [1, 2], timeout=60)
    web.lab.partition(n1)
    try:
        page.until("the page says inquorate", lambda: page.css("#quorum")
                   .get_attribute("data-quorate") == "false", timeout=60)
        cli = web.cli(n1, "clusvcadm", "-R", "web")
        assert cli.returncode != 0, cli.stdout
        before = page.result_text()
        buttons = [b for b in page.all('tr[data-service="service:web"] button[data-action]')
                   if b.is_displayed() and b.is_enabled()]
        assert buttons, "no action button on web's row"
        action = buttons[0].get_attribute("data-action")
        buttons[0].click()
        page.confirm("clusvcadm")
        ok, text = page.result(before)
        assert not ok, (action, text)
        assert "quorum" in text.lower() or "quorate" in text.lower(), (action, text)
    finally:
        web.lab.heal(n1)
