// Security page: the live feed from /api/v1/events/stream (the session cookie authenticates
// the EventSource), alerts sorted critical first, a browser notification for critical alerts,
// and acknowledging an alert with a CSRF-protected POST.
"use strict";
(function () {
  const ORDER = { critical: 0, major: 1, minor: 2, warning: 3, info: 4 };
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const alerts = document.getElementById("alerts");
  const feed = document.getElementById("feed");
  const live = document.getElementById("live");

  function text(tag, value, cls) {
    const el = document.createElement(tag);
    el.textContent = value;
    if (cls) el.className = cls;
    return el;
  }

  function sortAlerts() {
    const items = Array.from(alerts.querySelectorAll("li.alert"));
    items.sort(function (a, b) {
      const sa = a.classList.contains("st-active") ? 0 : 1;
      const sb = b.classList.contains("st-active") ? 0 : 1;
      return sa - sb || (ORDER[a.dataset.severity] ?? 9) - (ORDER[b.dataset.severity] ?? 9) ||
        Number(b.dataset.id) - Number(a.dataset.id);
    });
    items.forEach(function (li) { alerts.appendChild(li); });
    const empty = alerts.querySelector(".empty");
    if (empty && items.length) empty.remove();
  }

  function ackButton(a) {
    const b = text("button", "Acknowledge", "ack");
    b.type = "button";
    b.dataset.id = a.id;
    b.setAttribute("aria-label", "Acknowledge alert " + a.id + ": " + a.title + " at " + a.device);
    return b;
  }

  function showAlert(a) {
    let li = alerts.querySelector('li.alert[data-id="' + a.id + '"]');
    if (a.status === "cleared") { if (li) li.remove(); return; }
    const fresh = !li;
    if (fresh) { li = document.createElement("li"); alerts.appendChild(li); }
    li.className = "alert sev-" + a.severity + " st-" + a.status;
    li.dataset.id = a.id;
    li.dataset.severity = a.severity;
    li.replaceChildren(text("span", a.severity, "sev"), " ", text("strong", a.title),
      " · " + a.device + " · ", text("time", a.raised_at), " · ", text("span", a.status, "status"));
    if (a.status === "active") li.append(" ", ackButton(a));
    sortAlerts();
    if (fresh && a.severity === "critical" && window.Notification && Notification.permission === "granted") {
      new Notification("Critical: " + a.title, { body: a.device, tag: "alert-" + a.id });
    }
  }

  function doorState(device, state) {
    const li = document.getElementById("door-" + device);
    // a forced door stays "forced" until its alert clears (the server's view on reload)
    if (!li || (li.classList.contains("state-forced") && state !== "forced")) return;
    li.className = "door state-" + state;
    li.querySelector(".state").textContent = state;
  }

  function showEvent(e) {
    const li = text("li", "", "ev ev-" + e.event);
    li.append(text("time", new Date(e.ts).toISOString().replace("T", " ").slice(0, 19) + " UTC"),
      " " + e.device + ": " + e.event);
    feed.prepend(li);
    while (feed.children.length > 200) feed.lastElementChild.remove();
    if (e.event === "door_forced") doorState(e.device, "forced");
    else if (e.event === "door_opened") doorState(e.device, "open");
    else if (e.event === "door_closed") doorState(e.device, "closed");
  }

  const source = new EventSource("/api/v1/events/stream");
  source.onopen = function () { live.textContent = "live"; };
  source.onerror = function () { live.textContent = "reconnecting…"; };
  source.addEventListener("event", function (m) { showEvent(JSON.parse(m.data)); });
  ["alert.raised", "alert.acknowledged", "alert.cleared"].forEach(function (type) {
    source.addEventListener(type, function (m) { showAlert(JSON.parse(m.data).data); });
  });

  alerts.addEventListener("click", async function (ev) {
    const b = ev.target.closest("button.ack");
    if (!b) return;
    b.disabled = true;
    const r = await fetch("/console/alerts/" + b.dataset.id + "/ack", {
      method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" });
    if (r.ok) showAlert(await r.json());
    else { b.disabled = false; live.textContent = "acknowledge failed: " + r.status; }
  });

  const notify = document.getElementById("notify");
  if (!window.Notification) notify.hidden = true;
  notify.addEventListener("click", function () {
    Notification.requestPermission().then(function (p) { notify.textContent = "Notifications: " + p; });
  });
})();
