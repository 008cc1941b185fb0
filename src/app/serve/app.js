// drpilot serve: the page polls the server's JSON and redraws. Everything shown is
// set with textContent: nothing from a run is ever parsed as markup.
"use strict";

const POLL_MS = 1000;
let updates = 0;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c); else td.textContent = c === undefined || c === null ? "" : String(c);
    tr.appendChild(td);
  }
  return tr;
}

function secs(s) {
  if (s === undefined || s === null) return "—";
  const m = Math.floor(s / 60);
  const r = Math.round(s - m * 60);
  return m > 0 ? m + "m " + r + "s" : (Math.round(s * 10) / 10) + "s";
}

function stamp() {
  updates += 1;
  document.getElementById("updated").textContent = new Date().toISOString().slice(11, 19) + " UTC";
  document.getElementById("updates").textContent = String(updates);
  document.getElementById("error").textContent = "";
}

function failed(e) {
  document.getElementById("error").textContent = "could not update: " + e;
}

async function getJson(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(url + ": HTTP " + r.status);
  return r.json();
}

async function index() {
  const data = await getJson("/api/runs");
  document.getElementById("store").textContent = "State: " + data.store;
  const body = document.querySelector("#runs tbody");
  body.replaceChildren();
  for (const r of data.runs) {
    const a = el("a", r.run_id);
    a.href = "/runs/" + encodeURIComponent(r.run_id);
    body.appendChild(row([a, r.runbook, el("span", r.status, "status-" + r.status), r.created_at, r.sim ? "simulated" : "AWS"]));
  }
  document.getElementById("empty").hidden = data.runs.length > 0;
  stamp();
}

function runId() {
  return decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
}

async function run() {
  const id = runId();
  const data = await getJson("/api/runs/" + encodeURIComponent(id));
  const rep = data.report;
  const status = data.live ? "running" : rep.outcome.status;
  document.title = "drpilot: " + rep.runbook.name + " " + status;
  document.getElementById("title").textContent = rep.runbook.name + " — " + rep.run_id;
  const st = document.getElementById("status");
  st.textContent = status;
  st.className = "status status-" + status;
  document.getElementById("holder").textContent = data.live ? "(pid " + data.live.pid + " on " + data.live.host + ")" : "";
  document.getElementById("reason").textContent = data.live ? "" : (rep.outcome.reason || "");

  // The RTO clock: where it started on the run's clock, how far the run's clock is
  // (its last event), against the objective.
  const rto = rep.rto;
  let clock;
  if (rto.achieved_secs !== undefined && rto.achieved_secs !== null) {
    clock = "achieved " + secs(rto.achieved_secs);
  } else if (rto.starts_at_secs !== undefined && rto.starts_at_secs !== null) {
    clock = "running: " + secs(Math.max(0, rep.last_event_at_secs - rto.starts_at_secs)) + " as of the last event";
  } else {
    clock = "not started (nothing that interrupts service has run)";
  }
  const objective = rto.objective_secs ? " / objective " + secs(rto.objective_secs) : " (no objective)";
  const predicted = rto.predicted_secs ? ", predicted " + secs(rto.predicted_secs) : "";
  const p = document.getElementById("rto");
  p.textContent = clock + objective + predicted;
  p.className = rto.met === false ? "missed" : "";

  const pending = data.pending_approvals || [];
  const box = document.getElementById("pending");
  box.replaceChildren();
  for (const a of pending) {
    const d = el("div", null, "approval");
    d.appendChild(el("h3", a.step + (a.approvers > 1 ? " (" + a.approvers + " people must approve)" : "")));
    d.appendChild(el("p", a.message));
    if (a.at_risk) d.appendChild(el("p", a.at_risk, "bad"));
    if (a.approve_with) {
      d.appendChild(el("p", "Approve from any machine with access to the state store:"));
      d.appendChild(el("pre", a.approve_with));
    }
    box.appendChild(d);
  }
  document.getElementById("approvals").hidden = pending.length === 0;
  const waiting = new Set(pending.map((a) => a.step));

  const body = document.querySelector("#steps tbody");
  body.replaceChildren();
  for (const s of rep.steps) {
    const state = waiting.has(s.id) ? "waiting" : s.state;
    const words = waiting.has(s.id) ? "waiting for approval" : s.state.replace(/_/g, " ");
    let last = "";
    if (s.gates && s.gates.length) {
      const g = s.gates[s.gates.length - 1];
      const v = g.values && g.values.length ? g.values[g.values.length - 1].observed : "";
      last = g.check + ": " + v + (g.last_passed ? " ✓" : "");
    }
    const result = s.error || s.skip_reason || s.summary || "";
    body.appendChild(row([s.id, el("span", words, "state-" + state), s.attempts, last, result]));
  }

  const regions = rep.regions || [];
  const rb = document.querySelector("#regions tbody");
  rb.replaceChildren();
  const latest = new Map();
  for (const r of regions) latest.set(r.region + " " + r.service, r);
  for (const r of latest.values()) rb.appendChild(row([r.region, r.service, r.status, r.decided_by]));
  document.getElementById("regions-section").hidden = latest.size === 0;

  document.getElementById("events-link").href = "/api/runs/" + encodeURIComponent(id) + "/events";
  document.getElementById("report-link").href = "/api/runs/" + encodeURIComponent(id);
  document.getElementById("event-count").textContent = String(data.events);
  stamp();
}

function loop(f) {
  const tick = () => f().catch(failed).finally(() => setTimeout(tick, POLL_MS));
  tick();
}

document.addEventListener("DOMContentLoaded", () => {
  loop(document.body.dataset.page === "run" ? run : index);
});
