// clusterd-web: the live view (Server-Sent Events), the confirmation dialog and the
// drag of a service onto a member (Pointer Events: mouse, pen and touch alike).
// Without this file the page still shows everything and its forms still work.
"use strict";
(function () {
  var body = document.body;
  var csrf = body ? body.getAttribute("data-csrf") : null;
  if (!csrf) { return; }            // the login and message pages need nothing
  var admin = body.getAttribute("data-role") === "admin";
  var dialog = document.getElementById("confirm");
  var lastTrigger = null;

  function $(id) { return document.getElementById(id); }

  function fillTokens() {
    var inputs = document.querySelectorAll("input[name=csrf]");
    for (var i = 0; i < inputs.length; i++) { inputs[i].value = csrf; }
  }

  function shellQuote(s) {
    if (/^[A-Za-z0-9@%+=:,.\/_-]+$/.test(s)) { return s; }
    return "'" + s.replace(/'/g, "'\"'\"'") + "'";
  }

  // ------------------------------------------------------------ live view
  function setLive(up, text) {
    var live = $("live");
    if (!live) { return; }
    live.setAttribute("data-connected", up ? "true" : "false");
    live.textContent = text;
  }

  function memberOptions(names) {
    var select = $("confirm-member");
    if (!select) { return; }
    var keep = select.value;
    while (select.options.length > 1) { select.remove(1); }
    names.forEach(function (n) {
      var o = document.createElement("option");
      o.value = n; o.textContent = n;
      select.appendChild(o);
    });
    select.value = names.indexOf(keep) >= 0 ? keep : "";
  }

  function apply(data) {
    $("summary").innerHTML = data.summary;
    $("members-body").innerHTML = data.members;
    $("services-body").innerHTML = data.services;
    $("fence-body").innerHTML = data.fencing;
    $("events").innerHTML = data.events;
    memberOptions(data.member_names || []);
    fillTokens();
  }

  function connect() {
    if (!window.EventSource) { setLive(false, "Live updates: not supported; reload to see changes"); return; }
    var es = new EventSource("/events");
    setLive(false, "Live updates: connecting");
    es.onopen = function () { setLive(true, "Live updates: on"); };
    es.onerror = function () { setLive(false, "Live updates: reconnecting"); };
    es.addEventListener("status", function (ev) {
      setLive(true, "Live updates: on");
      try { apply(JSON.parse(ev.data)); } catch (err) { /* keep the last view */ }
    });
    es.addEventListener("expired", function (ev) {
      es.close();
      window.location.href = JSON.parse(ev.data);
    });
  }

  // ------------------------------------------------------------ actions
  function showResult(r) {
    var box = $("result");
    box.hidden = false;
    box.setAttribute("data-ok", r.ok ? "true" : "false");
    box.className = r.ok ? "ok" : "bad";
    box.textContent = "";
    var msg = document.createElement("p");
    msg.className = "message";
    msg.textContent = r.message || "";
    box.appendChild(msg);
    if (r.command) {
      var p = document.createElement("p");
      p.className = "command";
      p.appendChild(document.createTextNode("Command line: "));
      var code = document.createElement("code");
      code.textContent = r.command;
      p.appendChild(code);
      box.appendChild(p);
    }
    box.focus();
  }

  function updateCommand() {
    var form = $("confirm-form");
    var base = form.getAttribute("data-command") || "";
    var action = form.elements.action.value;
    var member = $("confirm-member").value;
    var takesMember = action === "enable" || action === "relocate";
    $("confirm-command").textContent = base + (takesMember && member ? " -m " + shellQuote(member) : "");
  }

  var VERBS = {enable: "Enable", disable: "Disable", restart: "Restart", relocate: "Relocate",
               freeze: "Freeze", unfreeze: "Unfreeze", standby: "Put in standby",
               active: "Make active"};

  function openConfirm(button, member) {
    if (!dialog || typeof dialog.showModal !== "function") { return false; }
    var form = $("confirm-form");
    var actForm = button.form;
    var action = button.getAttribute("data-action");
    var isNode = !!actForm.elements.node;
    var target = isNode ? actForm.elements.node.value : actForm.elements.service.value;
    var takesMember = action === "enable" || action === "relocate";
    form.elements.action.value = action;
    form.elements.service.disabled = isNode;
    form.elements.node.disabled = !isNode;
    form.elements.service.value = isNode ? "" : target;
    form.elements.node.value = isNode ? target : "";
    form.setAttribute("data-command", button.getAttribute("data-command") || "");
    $("confirm-member-row").hidden = !takesMember;
    $("confirm-member").disabled = !takesMember;
    $("confirm-member").value = member || "";
    $("confirm-text").textContent = VERBS[action] + " " + target +
      (member ? (action === "enable" ? " on " : " to ") + member : "") + "?";
    updateCommand();
    lastTrigger = button;
    dialog.showModal();
    $("confirm-ok").focus();
    return true;
  }

  function closeConfirm() {
    if (dialog.open) { dialog.close(); }
    if (lastTrigger && document.body.contains(lastTrigger)) { lastTrigger.focus(); }
  }

  function submitConfirm(ev) {
    ev.preventDefault();
    var form = $("confirm-form");
    var data = new URLSearchParams(new FormData(form));
    var ok = $("confirm-ok");
    ok.disabled = true;
    fetch("/action", {method: "POST", body: data, credentials: "same-origin",
                      headers: {"Accept": "application/json", "X-CSRF-Token": csrf}})
      .then(function (resp) {
        return resp.json().catch(function () {
          return {ok: false, message: "The web service answered HTTP " + resp.status + "."};
        });
      })
      .then(function (r) {
        if (r.login) { window.location.href = r.login; return; }
        closeConfirm();
        showResult(r);
      })
      .catch(function () {
        closeConfirm();
        showResult({ok: false, message: "The web service did not answer; is it running?"});
      })
      .then(function () { ok.disabled = false; });
  }

  // ------------------------------------------------------------ drag to relocate
  var drag = null;

  function dropzoneAt(x, y) {
    var el = document.elementFromPoint(x, y);
    var row = el && el.closest ? el.closest("tr.dropzone[data-member]") : null;
    return row;
  }

  function highlight(row) {
    if (drag.over === row) { return; }
    if (drag.over) { drag.over.classList.remove("drop-over"); }
    drag.over = row;
    if (row) { row.classList.add("drop-over"); }
  }

  function onPointerDown(ev) {
    var handle = ev.target.closest ? ev.target.closest(".drag") : null;
    if (!handle || ev.button > 0) { return; }
    var row = handle.closest("tr[data-service]");
    if (!row) { return; }
    ev.preventDefault();
    var ghost = document.createElement("div");
    ghost.className = "drag-ghost";
    ghost.textContent = row.getAttribute("data-service");
    document.body.appendChild(ghost);
    drag = {row: row, ghost: ghost, over: null, id: ev.pointerId};
    try { handle.setPointerCapture(ev.pointerId); } catch (err) { /* not capturable */ }
    row.classList.add("dragging");
    moveGhost(ev);
  }

  function moveGhost(ev) {
    drag.ghost.style.transform = "translate(" + (ev.clientX + 8) + "px," + (ev.clientY + 8) + "px)";
    highlight(dropzoneAt(ev.clientX, ev.clientY));
  }

  function onPointerMove(ev) {
    if (!drag || ev.pointerId !== drag.id) { return; }
    ev.preventDefault();
    moveGhost(ev);
  }

  function endDrag(ev, drop) {
    if (!drag || ev.pointerId !== drag.id) { return; }
    var d = drag;
    drag = null;
    var target = drop ? dropzoneAt(ev.clientX, ev.clientY) : null;
    if (d.over) { d.over.classList.remove("drop-over"); }
    d.row.classList.remove("dragging");
    d.ghost.remove();
    if (!target) { return; }
    var button = d.row.querySelector("button[data-action=relocate]");
    if (button) { openConfirm(button, target.getAttribute("data-member")); }
  }

  // ------------------------------------------------------------ wiring
  function init() {
    fillTokens();
    connect();
    if (!admin || !dialog) { return; }
    document.addEventListener("submit", function (ev) {
      var form = ev.target;
      if (!form.classList || !form.classList.contains("act")) { return; }
      var button = ev.submitter || document.activeElement;
      if (!button || !button.getAttribute || !button.getAttribute("data-action")) { return; }
      if (openConfirm(button, "")) { ev.preventDefault(); }
    });
    $("confirm-form").addEventListener("submit", submitConfirm);
    $("confirm-cancel").addEventListener("click", closeConfirm);
    $("confirm-member").addEventListener("change", updateCommand);
    dialog.addEventListener("cancel", function (ev) { ev.preventDefault(); closeConfirm(); });
    document.addEventListener("pointerdown", onPointerDown);
    document.addEventListener("pointermove", onPointerMove);
    document.addEventListener("pointerup", function (ev) { endDrag(ev, true); });
    document.addEventListener("pointercancel", function (ev) { endDrag(ev, false); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
