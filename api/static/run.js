// A run's page (GET /run/{id}): status, trigger, timings, the whole error (every input problem, every failed node
// with its first failing rows), each step with its log (searchable; the tail live while the run runs), every dbt
// node the run executed as a timing chart and a table, links to the artifacts and to each node's docs page.
"use strict";

(() => {
  const { $, el, svg, api, text, secs, duration, timeEl, stepStatus, legend, problemText, failureText, firstProblem, docsUrl, STATUS_WORDS } = FM;
  const runId = Number(location.pathname.replace(/\/+$/, "").split("/").pop());
  const ACTIVE = ["queued", "running"];
  const RESULT_OK = { success: "success", pass: "success" };
  let run = null, stream = null, lastStep = null, stepsKey = "", searchTimer = null, logTimer = null;
  let autoOpened = null;  // the running step this page opened by itself (closed again when the next one starts)
  const userOpened = new Set();  // steps the reader opened or closed: left as they are
  const logs = {};  // step name -> its log text, once loaded (a running step's is reloaded as it grows)

  const isActive = () => run && ACTIVE.includes(run.status);

  // ----------------------------------------------------------------------------------------------- the run
  async function load() {
    const r = await api("GET", `/runs/${runId}`);
    if (r.status !== 200) {
      $("title").textContent = `Run #${runId}`;
      $("summary").textContent = r.status === 404 ? `There is no run #${runId} (never started, or pruned from the history).`
        : `Cannot read run #${runId} (${r.status}): ${(r.data && r.data.detail) || ""}`;
      document.body.dataset.status = r.status === 404 ? "missing" : "error";
      document.body.dataset.loaded = "true";
      return;
    }
    show(r.data);
    $("run").hidden = false;
    await loadNodes();
    if (isActive()) follow();
    document.body.dataset.loaded = "true";
  }

  async function reload() {
    const r = await api("GET", `/runs/${runId}`);
    if (r.status === 200) show(r.data);
  }

  function show(data) {
    run = data;
    document.title = `features-mart · run #${run.run_id} ${run.status}`;
    document.body.dataset.status = run.status;
    const title = $("title");
    title.replaceChildren(`Run #${run.run_id} `, el("span", { class: "status " + run.status }, run.status));
    renderSummary();
    renderTrigger();
    renderTimings();
    renderProblem();
    renderSteps();
    renderArtifacts();
  }

  function renderSummary() {
    const passed = run.steps.filter((s) => s.status === "success").length;
    let line = `${STATUS_WORDS[run.status] || run.status}`;
    if (run.duration_seconds != null) line += isActive() ? ` for ${duration(run.duration_seconds)}` : ` in ${duration(run.duration_seconds)}`;
    line += `; ${passed} of ${run.steps.length} steps passed`;
    const first = firstProblem(run);
    if (first && run.status !== "success") line += `. ${first.text}`;
    $("summary").textContent = line;
  }

  function facts(list, pairs) {
    list.replaceChildren();
    for (const [k, v] of pairs) if (v != null && v !== "") list.append(el("dt", {}, k), el("dd", {}, v));
  }

  function cause(t) {
    if (t.cause) return t.cause;  // given by the caller (the dbt Cloud-compatible API's `cause`)
    if (t.source === "schedule") return "the schedule (SCHEDULE)" + (t.scheduled_for ? ", its tick of " + new Date(t.scheduled_for).toLocaleString() : "");
    if (t.source === "api") return `an API request: ${t.method || "POST"} /trigger from ${t.client || "an unknown client"}`;
    return t.source || "unknown";
  }

  function renderTrigger() {
    const t = run.trigger || {};
    const pairs = [["source", t.source || "unknown"], ["cause", cause(t)]];
    for (const [k, v] of Object.entries(t)) {
      if (k === "source" || k === "cause") continue;
      pairs.push([k.replace(/_/g, " "), k.endsWith("_for") || k.endsWith("_at") ? timeEl(v, true) : typeof v === "object" ? JSON.stringify(v) : String(v)]);
    }
    if (run.cancel_requested_at) pairs.push(["cancel asked at", timeEl(run.cancel_requested_at, true)]);
    if (run.cancel_reason) pairs.push(["cancelled by", run.cancel_reason]);
    facts($("trigger-facts"), pairs);
  }

  function renderTimings() {
    facts($("timings"), [
      ["created", timeEl(run.created_at, true)],
      ["started", run.started_at ? timeEl(run.started_at, true) : "not yet"],
      ["finished", run.finished_at ? timeEl(run.finished_at, true) : isActive() ? "not yet" : null],
      ["waited", run.started_at ? duration(secs(run.created_at, run.started_at)) : null],
      ["took", duration(run.duration_seconds)],
    ]);
  }

  // ------------------------------------------------------------------------------------- what went wrong
  function table(headers, rows, attrs) {
    const t = el("table", attrs || {});
    t.append(el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col" }, h)))));
    const body = el("tbody");
    for (const r of rows) body.append(r);
    t.append(body);
    return t;
  }

  function renderProblem() {
    const box = $("problem-details");
    box.replaceChildren();
    const ip = run.input_problems;
    const show = !!(run.error || (run.failures && run.failures.length) || ip);
    $("problem").hidden = !show;
    if (!show) return;
    $("problem-title").textContent = run.status === "cancelled" ? "Why it stopped"
      : run.status === "success" ? "What did not go to plan" : "What went wrong";
    if (ip) {
      box.append(el("p", {}, `The input data was rejected, nothing was loaded: ${ip.total} problem${ip.total === 1 ? "" : "s"}` +
        (ip.total > ip.items.length ? `, the first ${ip.items.length} listed here.` : ".")));
      const rows = ip.items.map((p, i) => el("tr", { "data-problem": i },
        el("td", {}, p.file), el("td", { class: "num" }, p.line == null ? "" : p.line), el("td", {}, p.key || ""),
        el("td", {}, p.column || ""), el("td", {}, p.value == null ? "" : el("code", {}, p.value)), el("td", {}, p.message)));
      box.append(table(["file", "line", "row", "column", "value", "problem"], rows, { id: "input-problems" }));
      if (ip.total > ip.items.length) box.append(el("p", { class: "muted" }, `… and ${ip.total - ip.items.length} more, not kept: fix these and run again to see them.`));
    }
    for (const f of run.failures || []) {
      const div = el("div", { class: "failure", "data-node": f.node });
      div.append(el("h3", {}, failureText(f)));
      const dl = el("dl", { class: "facts" });
      const pairs = [["node", el("a", { href: docsUrl(f.node) }, f.node)], ["status", f.status], ["dbt says", f.message],
        ["failing rows", f.failing_rows], ["all of them in", f.relation ? el("code", {}, f.relation) : null]];
      for (const [k, v] of pairs) if (v != null && v !== "") dl.append(el("dt", {}, k), el("dd", {}, v));
      div.append(dl);
      if (f.rows && f.rows.length) {
        const cols = [...new Set(f.rows.flatMap((r) => Object.keys(r)))];
        const rows = f.rows.map((r) => el("tr", {}, ...cols.map((c) => el("td", {}, r[c] == null ? "null" : typeof r[c] === "object" ? JSON.stringify(r[c]) : String(r[c])))));
        div.append(el("p", { class: "muted" }, `the first ${f.rows.length} failing row(s):`), table(cols, rows, { class: "failing-rows" }));
      }
      box.append(div);
    }
    $("whole-error").textContent = run.error || "";
    $("whole-error").hidden = !run.error;
    $("whole-error-title").hidden = !run.error;
  }

  // ---------------------------------------------------------------------------------------------- steps
  function renderSteps() {
    const key = JSON.stringify(run.steps.map((s) => [s.status, s.started_at, s.finished_at]));
    if (key === stepsKey) {  // the same steps: only the running one's time moves on
      for (const s of run.steps.filter((x) => x.status === "running")) {
        const took = document.querySelector(`details[data-step="${s.name}"] .took`);
        if (took) took.textContent = "running for " + duration(secs(s.started_at, new Date().toISOString()));
      }
      return;
    }
    stepsKey = key;
    const box = $("steps");
    const open = new Set([...box.querySelectorAll("details[open]")].map((d) => d.dataset.step));
    const focused = document.activeElement && document.activeElement.closest("details.step");
    const refocus = focused && focused.dataset.step;
    const running = run.steps.find((s) => s.status === "running");
    if (autoOpened && (!running || running.name !== autoOpened) && !userOpened.has(autoOpened)) open.delete(autoOpened);
    if (running && !userOpened.has(running.name)) { open.add(running.name); autoOpened = running.name; }
    box.replaceChildren();
    for (const s of run.steps) {
      const status = stepStatus(run, s);
      const started = s.log_offset != null || s.started_at;
      const end = s.finished_at || (s.status === "running" ? new Date().toISOString() : null);
      const d = el("details", { class: "step", "data-step": s.name, "data-status": status });
      const summary = el("summary", {},
        el("span", { class: "name" }, s.name), el("span", { class: "status " + status }, status),
        s.started_at ? el("span", {}, "started ", timeEl(s.started_at)) : null,
        s.started_at ? el("span", { class: "took" }, (s.finished_at ? "took " : "running for ") + duration(secs(s.started_at, end))) : null,
        s.exit_code != null ? el("span", { class: "muted" }, `exit code ${s.exit_code}`) : null,
        el("span", { class: "matches muted" }));
      d.append(summary);
      const body = el("div");
      body.append(started ? el("pre", { class: "step-log", "aria-label": `log of step ${s.name}` }, "loading…") : el("p", { class: "muted" }, `${s.status}: no log`));
      d.append(body);
      if (open.has(s.name)) d.open = true;
      if (started) d.addEventListener("toggle", () => { if (d.open) showLog(s.name); });
      summary.addEventListener("click", () => userOpened.add(s.name));
      summary.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") userOpened.add(s.name); });
      box.append(d);
      if (s.status !== "running" && logs[s.name] && logs[s.name].running) delete logs[s.name];  // it has ended: reload
    }
    for (const d of box.querySelectorAll("details[open]")) showLog(d.dataset.step);
    if (refocus) box.querySelector(`details[data-step="${refocus}"] > summary`).focus();  // where the reader was
  }

  async function loadLog(name) {
    const step = run.steps.find((s) => s.name === name);
    if (logs[name] && !logs[name].running) return logs[name].text;
    const r = await text(`/runs/${runId}/logs?step=${encodeURIComponent(name)}`);
    let body = r.text;
    if (r.status !== 200) { try { body = `(${JSON.parse(r.text).detail})`; } catch (e) { body = `(no log: ${r.status})`; } }
    logs[name] = { text: body, running: step && step.status === "running" };
    return body;
  }

  async function showLog(name) {
    const d = document.querySelector(`details[data-step="${name}"]`);
    if (!d) return;
    const body = await loadLog(name);
    const pre = d.querySelector("pre.step-log");
    if (!pre) return;
    const query = $("log-search").value.trim();
    if (query) renderMatches(d, pre, body, query);
    else { pre.textContent = body; d.querySelector(".matches").textContent = ""; }
    pre.dataset.loaded = "true";
    if (logs[name] && logs[name].running) pre.scrollTop = pre.scrollHeight;
  }

  // The lines holding `query` (any case), numbered, the matches marked.
  function renderMatches(d, pre, body, query) {
    const q = query.toLowerCase();
    const frag = document.createDocumentFragment();
    let count = 0;
    body.split("\n").forEach((line, i) => {
      const low = line.toLowerCase();
      if (!low.includes(q)) return;
      count++;
      frag.append(el("span", { class: "muted" }, `${i + 1}: `));
      let at = 0, hit;
      while ((hit = low.indexOf(q, at)) !== -1) {
        frag.append(line.slice(at, hit), el("mark", {}, line.slice(hit, hit + q.length)));
        at = hit + q.length;
      }
      frag.append(line.slice(at) + "\n");
    });
    pre.replaceChildren(count ? frag : el("span", { class: "muted" }, "no line matches"));
    d.querySelector(".matches").textContent = `${count} matching line${count === 1 ? "" : "s"}`;
    d.dataset.matches = count;
    return count;
  }

  async function search() {
    const query = $("log-search").value.trim();
    const steps = [...document.querySelectorAll("details.step")].filter((d) => d.querySelector("pre.step-log"));
    if (!query) {
      $("search-result").textContent = "";
      for (const d of steps) { delete d.dataset.matches; d.querySelector(".matches").textContent = ""; if (d.open) showLog(d.dataset.step); }
      return;
    }
    const found = [];
    let total = 0;
    for (const d of steps) {
      const body = await loadLog(d.dataset.step);
      if ($("log-search").value.trim() !== query) return;  // typed on meanwhile
      const n = renderMatches(d, d.querySelector("pre.step-log"), body, query);
      d.open = n > 0;
      if (n) { found.push(d.dataset.step); total += n; }
    }
    $("search-result").textContent = total ? `${total} matching line${total === 1 ? "" : "s"} in ${found.join(", ")}` : `no line matches “${query}”`;
  }

  // ------------------------------------------------------------------------------------- nodes and chart
  function nodeName(uid) { return uid.split(".")[2] || uid; }

  function stepAt(t) {
    for (const s of run.steps) {
      if (!s.started_at) continue;
      const end = s.finished_at ? new Date(s.finished_at) : new Date(8640000000000000);
      if (t >= new Date(s.started_at) && t <= end) return s.name;
    }
    return null;
  }

  async function loadNodes() {
    const r = await text(`/runs/${runId}/artifacts/run_results.json`);
    let results = [], note = "";
    if (r.status === 200) {
      try { results = JSON.parse(r.text).results || []; } catch (e) { note = "run_results.json cannot be read."; }
    } else {
      try { note = JSON.parse(r.text).detail; } catch (e) { note = `no run_results.json (${r.status})`; }
    }
    const nodes = [];
    let compiledForDocs = 0;
    for (const res of results) {
      const starts = (res.timing || []).map((t) => new Date(t.started_at)).filter((d) => !isNaN(d));
      const ends = (res.timing || []).map((t) => new Date(t.completed_at)).filter((d) => !isNaN(d));
      const start = starts.length ? new Date(Math.min(...starts)) : null;
      const end = ends.length ? new Date(Math.max(...ends)) : null;
      const step = start ? stepAt(start) : null;
      if (step === "docs") { compiledForDocs++; continue; }  // `dbt docs generate` compiles, it executes nothing
      nodes.push({ uid: res.unique_id, type: res.unique_id.split(".")[0], name: nodeName(res.unique_id), status: res.status,
        step, start, end, seconds: res.execution_time, message: res.message, failures: res.failures });
    }
    nodes.sort((a, b) => (a.start || Infinity) - (b.start || Infinity));
    renderNodes(nodes);
    renderTiming(nodes, note, compiledForDocs);
    document.body.dataset.nodes = nodes.length;
  }

  function renderNodes(nodes) {
    const body = $("nodes").querySelector("tbody");
    body.replaceChildren();
    const t0 = run.started_at ? new Date(run.started_at) : null;
    for (const n of nodes) {
      const status = RESULT_OK[n.status] ? n.status : n.status.replace(/ /g, "-");
      let message = n.message || "";
      if (n.failures) message += ` (${n.failures} failing row${n.failures === 1 ? "" : "s"})`;
      body.append(el("tr", { "data-node": n.uid, "data-status": n.status },
        el("td", {}, el("a", { href: docsUrl(n.uid), title: n.uid }, n.name)),
        el("td", {}, n.type), el("td", {}, n.step || "?"), el("td", { class: "status " + status }, n.status),
        el("td", { class: "num nowrap" }, n.start && t0 ? "+" + duration((n.start - t0) / 1000) : "–"),
        el("td", { class: "num nowrap", "data-seconds": n.seconds }, duration(n.seconds)),
        el("td", {}, message)));
    }
    $("nodes").hidden = !nodes.length;
  }

  function niceTick(span) {
    for (const t of [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]) if (span / t <= 10) return t;
    return 7200;
  }

  function renderTiming(nodes, note, compiledForDocs) {
    const chart = $("timing");
    chart.replaceChildren();
    const drawn = nodes.filter((n) => n.start && n.end);
    const docsNote = compiledForDocs ? ` The docs step compiled ${compiledForDocs} nodes for the docs site (not shown: it executes none).` : "";
    if (!drawn.length || !run.started_at) {
      chart.setAttribute("width", 0); chart.setAttribute("height", 0);
      $("timing-summary").textContent = (note || "No dbt node ran in this run.") + (isActive() ? " Nodes appear here as each step ends." : "") + docsNote;
      return;
    }
    const t0 = new Date(run.started_at);
    const last = Math.max(...drawn.map((n) => n.end), run.finished_at ? new Date(run.finished_at) : Date.now());
    const span = Math.max((last - t0) / 1000, 0.001);
    const W = Math.max(700, chart.parentElement.clientWidth - 4), L = 250, R = 20, top = 36, rowH = 14, gap = 4;
    const x = (t) => L + (((t - t0) / 1000) / span) * (W - L - R);
    const H = top + drawn.length * (rowH + gap) + 8;
    chart.setAttribute("width", W); chart.setAttribute("height", H);
    chart.setAttribute("viewBox", `0 0 ${W} ${H}`);
    run.steps.filter((s) => s.started_at).forEach((s, i) => {
      const a = x(new Date(s.started_at)), b = x(s.finished_at ? new Date(s.finished_at) : last);
      chart.append(svg("rect", { class: "band" + (i % 2 ? " odd" : ""), x: a, y: 16, width: Math.max(1, b - a), height: H - 16 }));
      if (b - a > 30) chart.append(svg("text", { x: a + 3, y: 12 }, s.name));
    });
    const tick = niceTick(span);
    for (let v = 0; v <= span + 1e-9; v += tick) {
      const px = L + (v / span) * (W - L - R);
      const label = v < 60 ? `${Number(v.toFixed(2))} s` : duration(v);
      chart.append(svg("line", { class: "tick", x1: px, x2: px, y1: 28, y2: H }), svg("text", { x: px + 2, y: 30 }, label));
    }
    drawn.forEach((n, i) => {
      const y = top + i * (rowH + gap);
      const label = n.name.length > 36 ? n.name.slice(0, 35) + "…" : n.name;
      chart.append(svg("text", { x: L - 6, y: y + 11, "text-anchor": "end" }, label));
      const status = RESULT_OK[n.status] || n.status.replace(/ /g, "-");
      const bar = svg("rect", { x: x(n.start), y, width: Math.max(2, x(n.end) - x(n.start)), height: rowH, class: status, "data-node": n.uid });
      bar.append(svg("title", {}, `${n.type} ${n.name}: ${n.status}, ${duration(n.seconds)} (from +${duration((n.start - t0) / 1000)})`));
      chart.append(bar);
    });
    const longest = drawn.reduce((a, n) => (a && a.seconds >= n.seconds ? a : n), null);
    const byType = {};
    for (const n of drawn) byType[n.type] = (byType[n.type] || 0) + 1;
    const kinds = Object.entries(byType).map(([k, v]) => `${v} ${k}${v === 1 ? "" : "s"}`).join(", ");
    const notPassed = drawn.filter((n) => !RESULT_OK[n.status]).length;
    $("timing-summary").textContent = `${drawn.length} nodes (${kinds}) on the run's time axis of ${duration(span)}, one bar each, ` +
      `in the order they started; the longest: ${longest.type} ${longest.name} (${duration(longest.seconds)}). ` +
      (notPassed ? `${notPassed} did not pass. ` : "All passed. ") + "The table below lists them with their times." + docsNote;
  }

  // ------------------------------------------------------------------------------------------ artifacts
  function renderArtifacts() {
    const list = $("artifacts");
    if (list.childElementCount) return;
    const items = [
      [`/runs/${runId}/logs`, "the whole log", "text, every step"],
      [`/runs/${runId}/artifacts/run_results.json`, "run_results.json", "dbt's result of every node of every step"],
      [`/runs/${runId}/artifacts/manifest.json`, "manifest.json", "the project as dbt parsed it for this run"],
      [`/runs/${runId}/artifacts/catalog.json`, "catalog.json", "the tables and columns (written by the docs step)"],
      [`/runs/${runId}`, "the run as JSON", "GET /runs/" + runId],
      [`/runs/${runId}/webhooks`, "webhook deliveries", "of this run's events"],
      ["/dbt-docs/", "the dbt docs site", "of the last successful run"],
    ];
    for (const [href, label, what] of items) list.append(el("li", {}, el("a", { href }, label), ` — ${what}`));
    list.append(el("li", { class: "muted" }, "A run keeps only the files of the steps it got to; old runs' files are pruned with their logs."));
  }

  // ------------------------------------------------------------------------------------------------ live
  function follow() {
    if (stream) return;
    $("live").hidden = false;
    $("live-title").textContent = "Live";
    stream = new EventSource(`/runs/${runId}/events`, { withCredentials: true });
    stream.addEventListener("progress", (e) => {
      const p = JSON.parse(e.data);
      $("live-progress").textContent = p.nodes_total ? `step ${p.step}: ${p.nodes_done}/${p.nodes_total} nodes` + (p.current_node ? ` — ${p.current_node}` : "") : `step ${p.step}`;
      $("live-meter").style.width = (p.nodes_total ? (100 * p.nodes_done) / p.nodes_total : 0) + "%";
      if (p.step !== lastStep) { lastStep = p.step; reload().then(loadNodes); }
    });
    stream.addEventListener("log", (e) => {
      const log = $("live-log");
      log.textContent = (log.textContent + e.data + "\n").split("\n").slice(-300).join("\n");
      log.scrollTop = log.scrollHeight;
      const running = run.steps.find((s) => s.status === "running");
      const d = running && document.querySelector(`details[data-step="${running.name}"]`);
      if (d && d.open && !logTimer) logTimer = setTimeout(() => { logTimer = null; if (logs[running.name]) logs[running.name].running = true; showLog(running.name); }, 500);
    });
    stream.addEventListener("status", async (e) => {
      stream.close(); stream = null;
      const done = JSON.parse(e.data);
      for (const name of Object.keys(logs)) if (logs[name].running) delete logs[name];
      stepsKey = "";
      show(done);
      $("live-title").textContent = "Log tail";
      $("live-progress").textContent = `ended: ${done.status}` + (done.duration_seconds != null ? ` in ${duration(done.duration_seconds)}` : "");
      $("live-meter-box").className = "meter " + done.status;
      const passed = done.steps.filter((s) => s.status === "success").length;
      $("live-meter").style.width = (done.status === "success" ? 100 : (100 * passed) / Math.max(1, done.steps.length)) + "%";
      await loadNodes();
      if ($("log-search").value.trim()) await search();
      document.body.dataset.ended = done.status;
    });
    stream.onerror = () => { if (stream && stream.readyState === EventSource.CLOSED) stream = null; };
    const poll = setInterval(() => { if (isActive()) reload(); else clearInterval(poll); }, 3000);
  }

  $("legend").append(legend());
  $("log-search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(search, 200); });
  load();
})();
