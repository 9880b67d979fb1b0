// What the runs page (runs.js) and a run's page (run.js) share: calling the API with the login cookie,
// building elements (never from HTML strings), durations and dates, statuses, a run's first problem.
"use strict";

const FM = (() => {
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v != null) e.setAttribute(k, v);
    for (const c of children) if (c != null) e.append(c instanceof Node ? c : String(c));
    return e;
  }

  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    return e;
  }

  // Same-origin calls: with API_TOKEN set, the browser's login cookie is accepted on them.
  async function api(method, path, body) {
    const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (body) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    const r = await fetch(path, init);
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    return { status: r.status, data };
  }

  async function text(path) {
    const r = await fetch(path, { credentials: "same-origin" });
    return { status: r.status, text: await r.text() };
  }

  function secs(a, b) { return a && b ? (new Date(b) - new Date(a)) / 1000 : null; }

  function duration(s) {
    if (s == null) return "";
    if (s < 10) return s.toFixed(2) + " s";
    if (s < 60) return s.toFixed(1) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
  }

  const pad = (n) => String(n).padStart(2, "0");
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  // A date that fits a table cell: the time today, day and time this year, else the full date.
  function shortDate(iso, now) {
    const d = new Date(iso), n = now || new Date();
    const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    if (d.toDateString() === n.toDateString()) return time;
    if (d.getFullYear() === n.getFullYear()) return `${d.getDate()} ${MONTHS[d.getMonth()]} ${time.slice(0, 5)}`;
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time.slice(0, 5)}`;
  }

  function fullDate(iso) {
    const d = new Date(iso);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, "0")}`;
  }

  // <time>: the short form shown, the full local date on hover and to assistive technology.
  function timeEl(iso, long) {
    if (!iso) return el("span", { class: "muted" }, "–");
    const full = fullDate(iso);
    return el("time", { datetime: iso, title: full }, long ? full : shortDate(iso));
  }

  // The status of a step as shown: a run cancelled before steps recorded `cancelled` shows its stopped step so.
  function stepStatus(run, step) {
    return run.status === "cancelled" && step.status === "failed" ? "cancelled" : step.status;
  }

  const STATUS_WORDS = {
    success: "succeeded", failed: "failed", cancelled: "cancelled", running: "running", queued: "queued",
    pending: "not started yet", skipped: "skipped",
  };
  const LEGEND = {
    success: "success", failed: "failed", cancelled: "cancelled (striped)", running: "running",
    pending: "pending: not started yet", skipped: "skipped: not run after a failure or cancel",
  };

  function legend() {
    const list = el("ul", { class: "legend", "aria-label": "what the step colours mean" });
    for (const [s, words] of Object.entries(LEGEND)) {
      list.append(el("li", { "data-status": s }, el("span", { class: "swatch " + s, "aria-hidden": "true" }), words));
    }
    return list;
  }

  // One validation problem in words: file, line, row key, column, value (unless the message names them), what.
  function problemText(p) {
    let where = p.file;
    if (p.line != null) where += `, line ${p.line}`;
    if (p.key) where += ` (${p.key})`;
    if (p.column && !p.message.includes(p.column)) where += `, column ${p.column}`;
    if (p.value != null && !p.message.includes(p.value)) where += `, value '${p.value}'`;
    return `${where}: ${p.message}`;
  }

  function failureText(f) {
    if (f.resource_type === "test" && f.status === "fail") {
      return `${f.resource_type} ${f.name} failed on ${f.failing_rows} row(s)` + (f.relation ? ` (see ${f.relation})` : "");
    }
    return `${f.resource_type} ${f.name}: ${f.message}`;
  }

  // The run's first problem, in full, and how many more there are.
  function firstProblem(run) {
    const ip = run.input_problems;
    if (ip && ip.items && ip.items.length) return { text: problemText(ip.items[0]), more: ip.total - 1, unit: "problem" };
    if (run.failures && run.failures.length) return { text: failureText(run.failures[0]), more: run.failures.length - 1, unit: "failed node" };
    if (run.error) {
      const lines = run.error.split("\n").filter((l) => l.trim());
      return { text: lines[0], more: 0, unit: "" };
    }
    return null;
  }

  function docsUrl(uniqueId) {
    return `/dbt-docs/#!/${uniqueId.split(".")[0]}/${uniqueId}`;
  }

  return { $, el, svg, api, text, secs, duration, shortDate, fullDate, timeEl, stepStatus, legend, problemText, failureText, firstProblem, docsUrl, STATUS_WORDS };
})();
