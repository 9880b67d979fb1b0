// The runs page (GET /): the last 50 runs (each linking to its page, /run/{id}), the active run's live progress
// from its event stream, Trigger and Cancel, a chart of run durations.
"use strict";

(() => {
  const { $, el, svg, api, secs, duration, timeEl, stepStatus, legend, firstProblem, STATUS_WORDS } = FM;
  let active = null, stream = null, streaming = null, shown = "", refreshes = 0;

  function say(text) { $("message").textContent = text; }

  function stepsBar(run) {
    const now = new Date().toISOString();
    const shown = run.steps.map((s) => {
      const status = stepStatus(run, s);
      const took = secs(s.started_at, s.finished_at || (s.status === "running" ? now : null)) || 0;
      return { name: s.name, status, took };
    });
    const label = shown.map((s) => `${s.name} ${s.status}` + (s.took ? ` ${duration(s.took)}` : "")).join(", ");
    const bar = el("div", { class: "bar", "data-run": run.run_id, role: "img", "aria-label": `steps: ${label}` });
    const total = shown.reduce((a, s) => a + s.took, 0) || 1;
    for (const s of shown) {
      const grow = s.status === "pending" || s.status === "skipped" ? 0 : s.took / total;
      const seg = el("div", { class: "seg " + s.status, "data-step": s.name, title: `${s.name}: ${s.status} ${duration(s.took)}` });
      seg.style.flex = `${grow} 0 3px`;
      bar.append(seg);
    }
    return bar;
  }

  function problemCell(run) {
    const td = el("td", { class: "problem" });
    const first = firstProblem(run);
    if (!first) return td;
    td.append(el("span", { class: "first" }, first.text));
    if (first.more > 0) td.append(" ", el("span", { class: "more" }, `(and ${first.more} more ${first.unit}${first.more > 1 ? "s" : ""})`));
    td.append(" ", el("a", { href: `/run/${run.run_id}`, class: "details-link", "aria-label": `details of run ${run.run_id}` }, "details"));
    return td;
  }

  function renderRuns(items) {
    const key = JSON.stringify(items);
    if (key === shown) return;  // nothing new: the table (and the keyboard focus in it) stays
    shown = key;
    const body = $("runs");
    const focused = document.activeElement && document.activeElement.closest("tr[data-run-id] a");
    const refocus = focused && [focused.closest("tr").dataset.runId, focused.className];
    body.replaceChildren();
    for (const run of items) {
      const tr = el("tr", { "data-run-id": run.run_id, "data-status": run.status });
      tr.append(el("td", {}, el("a", { href: `/run/${run.run_id}`, class: "run-link" }, "#" + run.run_id)));
      const cancelling = run.cancel_requested_at && (run.status === "running" || run.status === "queued");
      tr.append(el("td", { class: "status " + run.status }, run.status + (cancelling ? " (cancelling)" : "")));
      const t = run.trigger || {};
      tr.append(el("td", { class: "source" }, (t.source || "") + (t.cause ? ": " + t.cause : "")));
      tr.append(el("td", { class: "created" }, timeEl(run.created_at)));
      tr.append(el("td", { class: "num nowrap" }, duration(run.duration_seconds)));
      tr.append(el("td", {}, stepsBar(run)));
      tr.append(problemCell(run));
      body.append(tr);
    }
    if (refocus) {  // the link the reader was on, in the new table
      const again = body.querySelector(`tr[data-run-id="${refocus[0]}"] a.${refocus[1]}`);
      if (again) again.focus();
    }
  }

  function renderChart(items) {
    const chart = $("chart");
    chart.replaceChildren();
    const runs = items.filter((r) => r.duration_seconds != null).slice(0, 50).reverse();
    const max = Math.max(1, ...runs.map((r) => r.duration_seconds));
    const w = 1000, h = 120, slot = w / 50;
    chart.append(svg("text", { x: 2, y: 10 }, "max " + duration(max)));
    runs.forEach((r, i) => {
      const bh = Math.max(1, (r.duration_seconds / max) * (h - 14));
      const rect = svg("rect", { x: i * slot + 2, width: slot - 4, y: h - bh, height: bh, class: r.status, "data-run": r.run_id });
      rect.append(svg("title", {}, `run ${r.run_id}: ${r.status}, ${duration(r.duration_seconds)}`));
      chart.append(rect, svg("text", { x: i * slot + 2, y: h + 12 }, r.run_id));
    });
    const longest = runs.reduce((a, r) => (a && a.duration_seconds >= r.duration_seconds ? a : r), null);
    $("chart-summary").textContent = runs.length
      ? `${runs.length} finished run(s), oldest left; the longest: run ${longest.run_id} (${longest.status}, ` +
        `${duration(longest.duration_seconds)}); the last: run ${runs[runs.length - 1].run_id} ` +
        `(${runs[runs.length - 1].status}, ${duration(runs[runs.length - 1].duration_seconds)}).`
      : "No finished run yet.";
  }

  function showProgress(p) {
    $("active-step").textContent = p.nodes_total ? `step ${p.step}: ${p.nodes_done}/${p.nodes_total} nodes` : `step ${p.step}`;
    $("active-node").textContent = p.current_node || "";
    $("active-meter").style.width = (p.nodes_total ? (100 * p.nodes_done) / p.nodes_total : 0) + "%";
  }

  // The panel's last word: the run's real final state, from the `status` event.
  function showFinal(run) {
    $("active-title").textContent = `run #${run.run_id} ${run.status}`;
    $("active-title").className = "status " + run.status;
    const passed = run.steps.filter((s) => s.status === "success").length;
    const first = firstProblem(run);
    let line = `${STATUS_WORDS[run.status] || run.status} in ${duration(run.duration_seconds)}: ${passed}/${run.steps.length} steps passed`;
    if (first && run.status !== "success") line += ` — ${first.text}`;
    else if (first) line += ` (${first.text})`;
    $("active-step").textContent = line;
    $("active-node").textContent = "";
    $("active-meter-box").className = "meter " + run.status;
    $("active-meter").style.width = (100 * (run.status === "success" ? 1 : passed / Math.max(1, run.steps.length))) + "%";
    document.body.dataset.followed = run.status;
  }

  function follow(run) {
    if (streaming === run.run_id) return;
    if (stream) stream.close();
    streaming = run.run_id;
    $("active").hidden = false;
    $("active-title").textContent = `run #${run.run_id} ${run.status}`;
    $("active-title").className = "status " + run.status;
    $("active-step").textContent = "";
    $("active-node").textContent = "";
    $("active-link").href = `/run/${run.run_id}`;
    $("active-meter-box").className = "meter";
    $("active-meter").style.width = "0%";
    $("log").textContent = "";
    delete document.body.dataset.followed;
    stream = new EventSource(`/runs/${run.run_id}/events`, { withCredentials: true });
    stream.addEventListener("progress", (e) => {
      $("active-title").textContent = `run #${run.run_id} running`;
      $("active-title").className = "status running";
      showProgress(JSON.parse(e.data));
    });
    stream.addEventListener("log", (e) => {
      const log = $("log");
      log.textContent = (log.textContent + e.data + "\n").split("\n").slice(-200).join("\n");
      log.scrollTop = log.scrollHeight;
    });
    stream.addEventListener("status", (e) => {
      const done = JSON.parse(e.data);
      stream.close(); stream = null; streaming = null;
      showFinal(done);
      const first = firstProblem(done);
      say(`run #${done.run_id} ended: ${done.status}` + (first && done.status !== "success" ? ` (${first.text})` : ""));
      refresh();
    });
    stream.onerror = () => { if (stream && stream.readyState === EventSource.CLOSED) { stream = null; streaming = null; } };
  }

  async function refresh() {
    const r = await api("GET", "/runs?limit=50");
    if (r.status !== 200) { say(`cannot read the runs (${r.status}): ${(r.data && r.data.detail) || ""}`); return; }
    const items = r.data.items;
    renderRuns(items);
    renderChart(items);
    active = items.find((x) => x.status === "queued" || x.status === "running") || null;
    $("cancel").disabled = !active || !!active.cancel_requested_at;
    $("trigger").disabled = !!active;
    if (active) follow(active);
    document.body.dataset.loaded = "true";
    document.body.dataset.refreshes = ++refreshes;
  }

  $("legend").append(legend());

  $("trigger").addEventListener("click", async () => {
    const r = await api("POST", "/trigger");
    if (r.status === 202) say(`started run #${r.data.run_id}`);
    else say(`not started (${r.status}): ${(r.data && r.data.detail) || ""}`);
    await refresh();
  });

  $("cancel").addEventListener("click", async () => {
    if (!active) return;
    const r = await api("POST", `/runs/${active.run_id}/cancel`, { reason: "Cancel button on the runs page" });
    if (r.status === 202) say(`cancelling run #${active.run_id}…`);
    else say(`cannot cancel (${r.status}): ${(r.data && r.data.detail) || ""}`);
    await refresh();
  });

  refresh();
  setInterval(refresh, 5000);
})();
