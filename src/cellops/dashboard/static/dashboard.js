// cellops dashboard: live updates and the operator's buttons. No framework, no CDN.
// The event stream is read with fetch (it carries the session cookie; EventSource would
// only deliver the event kinds it was told of), and pages re-fetch server-rendered parts.
"use strict";

const HEADER = { "X-CellOps-Request": "dashboard" };

// Follow /api/v1/events/stream: onEvent(kind, data) for each event; reconnects after a
// drop from the last id seen; onOpen() each time the stream (re)opens.
function follow(params, onEvent, onOpen) {
  let last = null;
  async function run() {
    const query = new URLSearchParams(params);
    if (last !== null) query.set("after", last);
    try {
      const response = await fetch("/api/v1/events/stream?" + query, { cache: "no-store" });
      if (response.status === 401) { window.location.reload(); return; }
      if (!response.ok || !response.body) throw new Error("stream " + response.status);
      if (onOpen) onOpen();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = {};
          for (const line of block.split("\n")) {
            if (!line || line.startsWith(":")) continue;
            const at = line.indexOf(": ");
            fields[line.slice(0, at)] = line.slice(at + 2);
          }
          if (fields.id) last = fields.id;
          if (fields.data) onEvent(fields.event || "message", JSON.parse(fields.data));
        }
      }
    } catch (error) {
      // the controller restarted or the network dropped: try again shortly
    }
    setTimeout(run, 2000);
  }
  run();
}

function flash(text, failed) {
  const box = document.getElementById("flash");
  if (!box) return;
  box.textContent = text;
  box.className = failed ? "error" : "";
  box.hidden = false;
}

// Re-fetch a server-rendered part (the element's data-src) and swap it in if it changed.
async function refresh(element) {
  const response = await fetch(element.dataset.src, { cache: "no-store" });
  if (response.redirected && new URL(response.url).pathname === "/login") {
    window.location.reload();
    return;
  }
  if (!response.ok) return;
  const html = await response.text();
  if (html !== element.dataset.html) {
    element.dataset.html = html;
    element.innerHTML = html;
  }
}

function debounced(fn, wait) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, wait); };
}

function liveRollout() {
  const panel = document.getElementById("rollout-panel");
  if (!panel) return;
  const again = debounced(() => refresh(panel), 100);
  follow({}, again, again);
  setInterval(() => { if (!document.hidden) refresh(panel); }, 10000); // events do the work
  setInterval(() => {
    const clock = document.getElementById("countdown");
    if (!clock) return;
    const left = Math.max(0, parseFloat(clock.dataset.seconds) - 1);
    clock.dataset.seconds = left;
    clock.querySelector("b").textContent = Math.round(left);
  }, 1000);
}

function liveEvents() {
  const table = document.getElementById("events");
  if (!table || !table.dataset.live) return;
  const filters = JSON.parse(table.dataset.live);
  const params = {};
  if (filters.kind) params.kind = filters.kind;
  if (filters.cell) params.cell = filters.cell;
  const body = table.tBodies[0];
  follow(params, (kind, e) => {
    if (filters.service && e.service !== filters.service) return;
    if (body.querySelector(`tr[data-id="${e.id}"]`)) return;
    const row = document.createElement("tr");
    row.dataset.id = e.id;
    row.className = "fresh k-" + e.kind;
    const cells = [e.at.slice(0, 19).replace("T", " "), e.kind, e.cell || "", e.service || "",
      e.rollout ? "#" + e.rollout : "", e.message];
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      row.appendChild(td);
    }
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > 500) body.deleteRow(-1);
  });
}

// The operator's buttons (rendered only for operators; the API checks the role again).
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  button.disabled = true;
  try {
    const response = await fetch(button.dataset.action, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...HEADER },
      body: button.dataset.body || "{}",
    });
    const answer = await response.json().catch(() => ({}));
    flash(answer.message || answer.detail || response.statusText, !response.ok);
  } catch (error) {
    flash("the controller did not answer: " + error, true);
  } finally {
    button.disabled = false;
    const panel = document.getElementById("rollout-panel");
    if (panel) refresh(panel);
  }
});

document.addEventListener("DOMContentLoaded", () => {
  liveRollout();
  liveEvents();
});
