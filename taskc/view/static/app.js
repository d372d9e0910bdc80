// taskc view: a small page over the viewer's JSON API. Every piece of data is inserted as text
// (text nodes / textContent), never as HTML. Views: #/ index, #/compare, #/sample, #/kind, #/regress.
"use strict";

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const app = () => document.getElementById("app");
const fmt = (v, d = 3) => (v === null || v === undefined || Number.isNaN(v)) ? "—" : Number(v).toFixed(d);
const pct = (v) => (v === null || v === undefined) ? "—" : (100 * v).toFixed(1) + "%";
const money = (v) => (v === null || v === undefined) ? "—" : "$" + Number(v).toFixed(2);
const json = (v) => JSON.stringify(v, null, 2);

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function get(path, params) {
  const url = path + (params ? "?" + params.toString() : "");
  let res;
  try { res = await fetch(url, {headers: {"Accept": "application/json"}}); }
  catch (e) { throw new Error("the viewer is not reachable (is taskc view still running?)"); }
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) throw new Error((data && data.error) || (res.status + " " + res.statusText));
  return data;
}

function hashParams() {
  const h = location.hash || "#/";
  const q = h.indexOf("?");
  return [q < 0 ? h.slice(1) : h.slice(1, q), new URLSearchParams(q < 0 ? "" : h.slice(q + 1))];
}

function go(view, params) { location.hash = "#" + view + (params && params.toString() ? "?" + params.toString() : ""); }

function scoreBadge(score, cell) {
  if (cell && cell.error) return el("span", {class: "score flag", title: "request failed"}, "error");
  if (cell && cell.valid === false) return el("span", {class: "score flag", title: "broke the output contract"}, "invalid");
  if (score === null || score === undefined) return el("span", {class: "score"}, "—");
  return el("span", {class: "score " + (score >= 1 ? "right" : "wrong")}, fmt(score, 2));
}

// --- index -----------------------------------------------------------------------------------------
async function viewIndex() {
  const data = await get("/api/index");
  document.getElementById("root").textContent = data.root;
  const out = [el("h1", {}, "Runs")];
  if (!data.groups.length) out.push(el("p", {class: "note"}, "No runs under " + data.root + " yet (taskc eval writes them)."));
  for (const s of data.skipped) out.push(el("p", {class: "warn"}, s));
  for (const g of data.groups) {
    const metricHeads = g.metrics.map((m) => el("th", {class: "num"}, m));
    const rows = g.runs.map((r) => el("tr", {class: r.superseded ? "muted" : ""},
      el("td", {}, el("input", {type: "checkbox", class: "run-check", value: r.id, checked: !r.superseded, "aria-label": r.id, "data-started": r.started || ""})),
      el("td", {}, r.model), el("td", {}, el("span", {class: "pre"}, r.run_id), r.superseded ? " (older)" : ""),
      g.metrics.map((m) => el("td", {class: "num"}, fmt(r.metrics[m].mean) + " ± " + fmt(r.metrics[m].std))),
      el("td", {class: "num"}, r.n === undefined || r.n === null ? "—" : r.n), el("td", {class: "num"}, pct(r.invalid_rate)),
      el("td", {class: "num"}, r.errors === undefined || r.errors === null ? "—" : r.errors),
      el("td", {class: "num", title: r.cost_basis || ""}, money(r.cost_per_million)),
      el("td", {class: "num"}, fmt(r.p50, 1)), el("td", {class: "num"}, fmt(r.p95, 1)),
      el("td", {}, r.status === "complete" ? "" : r.status, r.notes.map((n) => el("div", {class: "warn"}, n)))));
    const section = el("section", {class: "group", "data-group": g.id},
      el("h2", {}, g.task + " · contract " + g.contract_id.slice(0, 12) + " · " + g.kind),
      el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, ""), el("th", {}, "model"), el("th", {}, "run"), metricHeads,
        el("th", {class: "num"}, "n"), el("th", {class: "num"}, "invalid"), el("th", {class: "num"}, "errors"),
        el("th", {class: "num"}, "$/1M req"), el("th", {class: "num"}, "p50 ms"), el("th", {class: "num"}, "p95 ms"),
        el("th", {}, "status"))), el("tbody", {}, rows)));
    const checked = () => [...section.querySelectorAll(".run-check:checked")];
    const chosen = () => checked().map((c) => c.value);
    // a regression reads older -> newer: the earlier start first
    const byStart = () => checked().sort((a, b) => (a.dataset.started + a.value).localeCompare(b.dataset.started + b.value)).map((c) => c.value);
    const params = (ids) => { const p = new URLSearchParams({group: g.id}); ids.forEach((i) => p.append("run", i)); return p; };
    section.append(el("div", {class: "bar"},
      el("button", {class: "compare", onclick: () => chosen().length ? go("/compare", params(chosen())) : showError("choose at least one run")}, "Compare samples"),
      el("button", {class: "kind", onclick: () => chosen().length ? go("/kind", params(chosen())) : showError("choose at least one run")}, "Per-kind view"),
      el("button", {class: "regress", onclick: () => chosen().length === 2 ? go("/regress", params(byStart())) : showError("choose exactly two runs for a regression view (before, after)")}, "Regression (2 runs)")));
    if (g.primary) section.append(el("img", {class: "chart", src: "/api/chart?" + new URLSearchParams({group: g.id}), alt: g.task + ": " + g.primary + " against cost"}));
    out.push(section);
  }
  app().replaceChildren(...out);
}

// --- side-by-side table ------------------------------------------------------------------------
function runHeads(data) {
  const out = [];
  if (data.group.gold_note && !data.group.gold) out.push(el("p", {class: "warn"}, data.group.gold_note));
  else if (data.group.gold_note) out.push(el("p", {class: "note"}, data.group.gold_note));
  for (const r of data.runs) {
    for (const n of r.notes) out.push(el("p", {class: "warn"}, r.model + ": " + n));
    if (r.partial) out.push(el("p", {class: "warn"}, r.model + ": " + r.partial));
    for (const p of r.problems) out.push(el("p", {class: "warn"}, r.model + ": " + p));
  }
  return out;
}

function sampleTable(data, params) {
  const head = el("tr", {}, el("th", {}, "row"), el("th", {}, "input"), el("th", {}, "gold"),
    data.runs.map((r) => el("th", {}, r.model)));
  const body = data.rows.map((row) => el("tr", {class: "row", "data-key": row.key, onclick: () => {
      const p = new URLSearchParams({group: data.group.id, row: row.key});
      data.runs.forEach((r) => p.append("run", r.id));
      go("/sample", p);
    }},
    el("td", {class: "num"}, row.repeat ? row.index + "." + row.repeat : row.index),
    el("td", {class: "cell-out"}, el("div", {class: "pre"}, row.input)),
    el("td", {class: "cell-out"}, el("div", {class: "pre gold"}, row.gold === null ? "—" : row.gold)),
    row.cells.map((c) => el("td", {class: "cell-out"}, c.present ? [scoreBadge(c.score, c), el("div", {class: "pre out"}, c.output === null ? "(no output)" : c.output),
      c.error ? el("div", {class: "warn"}, c.error) : null, c.invalid_reason ? el("div", {class: "warn"}, c.invalid_reason) : null]
      : el("span", {class: "muted"}, "not in this run")))));
  const pager = el("div", {class: "bar pager"},
    el("button", {id: "prev", disabled: data.page <= 0, onclick: () => { params.set("page", data.page - 1); go(hashParams()[0], params); }}, "‹ prev"),
    el("span", {id: "page-info"}, "page " + (data.page + 1) + " of " + data.pages + " · " + data.matched + " of " + data.total + " rows"),
    el("button", {id: "next", disabled: data.page >= data.pages - 1, onclick: () => { params.set("page", data.page + 1); go(hashParams()[0], params); }}, "next ›"));
  return [pager, el("table", {id: "samples"}, el("thead", {}, head), el("tbody", {}, body))];
}

const FILTER_NAMES = {wrong: "only wrong", invalid: "only invalid", errors: "only errors", disagree: "where models disagree"};

async function viewCompare(params) {
  const data = await get("/api/compare", params);
  const active = new Set(params.getAll("filter"));
  const toggles = Object.entries(FILTER_NAMES).map(([name, label]) => el("label", {},
    el("input", {type: "checkbox", id: "filter-" + name, checked: active.has(name), onchange: (ev) => {
      const p = new URLSearchParams(params); p.delete("filter"); p.delete("page");
      for (const n of Object.keys(FILTER_NAMES)) if (n === name ? ev.target.checked : active.has(n)) p.append("filter", n);
      go("/compare", p);
    }}), " " + label + " (" + (data.counts[name] ?? 0) + ")"));
  const search = el("input", {type: "search", id: "search", placeholder: "text in inputs, outputs, gold", value: params.get("q") || ""});
  const form = el("form", {class: "bar", onsubmit: (ev) => {
    ev.preventDefault(); const p = new URLSearchParams(params); p.delete("page");
    if (search.value) p.set("q", search.value); else p.delete("q");
    go("/compare", p);
  }}, toggles, search, el("button", {type: "submit"}, "Search"));
  app().replaceChildren(el("h1", {}, data.group.task + " · " + data.runs.map((r) => r.model).join(" vs ")),
    el("p", {class: "note"}, "Judged by " + (data.metric || "no metric") + " (wrong: below 1). Click a row to see the whole sample."),
    ...runHeads(data), form, ...sampleTable(data, params));
}

async function viewRegress(params) {
  if (!params.get("filter")) params.set("filter", "regressed");
  const data = await get("/api/compare", params);
  const [a, b] = data.runs;
  const tab = (name, label) => el("button", {class: params.get("filter") === name ? "on" : "", id: "tab-" + name,
    onclick: () => { const p = new URLSearchParams(params); p.set("filter", name); p.delete("page"); go("/regress", p); }},
    label + " (" + (data.counts[name] ?? 0) + ")");
  app().replaceChildren(el("h1", {}, "Regression: " + a.model + " (" + a.run_id + ") → " + b.model + " (" + b.run_id + ")"),
    el("p", {class: "note"}, "Rows of the same contract that changed between the two runs, judged by " + data.metric + "."),
    ...runHeads(data), el("div", {class: "bar tabs"}, tab("regressed", "right → wrong"), tab("fixed", "wrong → right"),
      el("button", {id: "swap", onclick: () => {
        const p = new URLSearchParams(params); p.delete("run"); p.delete("page");
        [b.id, a.id].forEach((i) => p.append("run", i)); go("/regress", p);
      }}, "swap before / after")),
    ...sampleTable(data, params));
}

// --- one sample ------------------------------------------------------------------------------------
function kv(name, value) { return el("div", {}, el("b", {}, name + ": "), el("span", {class: "pre"}, value)); }

async function viewSample(params) {
  const data = await get("/api/sample", params);
  const inputs = Object.entries(data.inputs || {}).map(([k, v]) => el("div", {class: "msg"}, el("b", {}, k),
    el("pre", {}, typeof v === "string" ? v : json(v))));
  const messages = el("div", {id: "messages"});
  const cards = data.cells.map((c) => el("div", {class: "card run-card"}, el("h3", {}, c.model),
    !c.present ? el("p", {class: "muted"}, "not in this run") : [
      el("div", {}, scoreBadge(data.metric ? (c.scores || {})[data.metric] : null, {valid: c.valid, error: c.error}),
        "line " + c.line + " of " + c.run + "/samples.jsonl"),
      el("pre", {class: "raw"}, c.raw === null || c.raw === undefined ? "(no output)" : c.raw),
      c.error ? kv("error", c.error) : null, c.invalid_reason ? kv("invalid", c.invalid_reason) : null,
      kv("scores", json(c.scores || {})), c.details && Object.keys(c.details).length ? kv("details", json(c.details)) : null,
      kv("parsed", json(c.parsed === undefined ? null : c.parsed)),
      kv("latency", c.latency_s === undefined ? "—" : fmt(1000 * c.latency_s, 1) + " ms" + (c.cached ? " (cached)" : "")),
      c.usage ? kv("tokens", json(c.usage)) : null]));
  const sql = el("div", {id: "sql"});
  app().replaceChildren(el("h1", {}, data.group.task + " · row " + data.index + (data.repeat ? " repeat " + data.repeat : "")),
    el("h2", {}, "Input"), ...inputs,
    el("button", {id: "show-messages", onclick: async (ev) => {
      ev.target.disabled = true;
      try {
        const m = await get("/api/messages", params);
        messages.replaceChildren(...(m.note ? [el("p", {class: "warn"}, m.note)] : []),
          ...m.messages.map((x) => el("div", {class: "msg"}, el("b", {}, x.role), el("pre", {}, x.content))));
      } catch (e) { messages.replaceChildren(el("p", {class: "warn"}, e.message)); }
    }}, "Show rendered messages"), messages,
    el("h2", {}, "Gold"), data.gold === null ? el("p", {class: "warn"}, data.group.gold_note) : el("pre", {id: "gold"}, data.gold),
    el("h2", {}, "Outputs"), el("div", {class: "cards"}, cards), sql);
  if (data.group.kind === "sql") {
    sql.replaceChildren(el("h2", {}, "SQL results"), el("p", {class: "note"}, "Running the queries read-only…"));
    try { sql.replaceChildren(el("h2", {}, "SQL results"), ...sqlResults(await get("/api/sql", params))); }
    catch (e) { sql.replaceChildren(el("h2", {}, "SQL results"), el("p", {class: "warn"}, e.message)); }
  }
}

function resultBlock(title, r) {
  if (!r) return el("div", {class: "card"}, el("h3", {}, title), el("p", {class: "warn"}, "no gold query"));
  const rows = r.rows ? el("table", {}, el("tbody", {}, r.rows.map((row) => el("tr", {}, row.map((v) => el("td", {}, v === null ? "NULL" : v))))))
    : null;
  return el("div", {class: "card sql-card"}, el("h3", {}, title), el("pre", {}, r.sql || ""),
    r.error ? el("p", {class: "warn"}, r.error) : el("p", {class: "note"}, (r.total ?? r.rows.length) + " rows"
      + ((r.total ?? 0) > r.rows.length ? " (first " + r.rows.length + " shown)" : "")), rows);
}

function sqlResults(data) {
  return [data.note ? el("p", {class: "warn"}, data.note) : el("p", {class: "note"}, "database " + data.database),
    el("div", {class: "cards"}, resultBlock("gold query", data.gold), data.runs.map((r) => resultBlock(r.model, r)))];
}

// --- per-kind view ---------------------------------------------------------------------------------
function simpleTable(head, rows, id) {
  return el("table", id ? {id} : {}, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((v) => el("td", {class: typeof v === "number" ? "num" : ""}, v))))));
}

function kindBlock(r) {
  const out = [el("h2", {}, r.model + " · " + r.run)];
  const note = (n) => n ? el("p", {class: "warn"}, n) : null;
  if (r.confusion) {
    const c = r.confusion;
    out.push(note(c.note));
    if (c.rows) out.push(el("p", {class: "note"}, "rows: gold label; columns: predicted"),
      simpleTable(["gold \\ predicted", ...c.columns, "recall"], c.rows.map((g, i) => [g, ...c.matrix[i], fmt(c.recall[i], 2)]), "confusion"));
  }
  if (r.tool_arguments) {
    const t = r.tool_arguments;
    out.push(note(t.note), el("p", {class: "note"}, Object.entries(t.totals).map(([k, v]) => k + ": " + v).join(" · ")),
      simpleTable(["tool", "argument", "in gold", "missing", "wrong value", "extra"],
        t.arguments.map((a) => [a.tool, a.argument, a.expected, a.missing, a.wrong, a.extra]), "arguments"));
  }
  if (r.object_fields) {
    out.push(note(r.object_fields.note), simpleTable(["field", "samples", "accuracy"],
      r.object_fields.fields.map((f) => [f.field, f.n, fmt(f.accuracy, 3)]), "fields"));
  }
  if (r.sql_reasons) {
    out.push(el("p", {class: "note"}, "Why queries failed, over " + r.sql_reasons.n + " samples (open a row of the table to see the SQL and its result)"),
      simpleTable(["reason", "samples"], r.sql_reasons.reasons.map((x) => [x.reason, x.count]), "reasons"));
  }
  if (r.histogram) {
    out.push(simpleTable(["score of " + (r.metric || "metric"), "samples"], r.histogram.bins.map((b) => [b.range, b.count]), "histogram"));
  }
  return out;
}

async function viewKind(params) {
  const data = await get("/api/kind", params);
  app().replaceChildren(el("h1", {}, data.group.task + " · per-kind view (" + data.kind + ")"),
    ...(data.group.gold ? [] : [el("p", {class: "warn"}, data.group.gold_note)]), ...data.runs.flatMap(kindBlock).filter(Boolean));
}

// --- router ----------------------------------------------------------------------------------------
const VIEWS = {"/": viewIndex, "/compare": viewCompare, "/sample": viewSample, "/kind": viewKind, "/regress": viewRegress};

async function route() {
  const [view, params] = hashParams();
  showError("");
  const handler = VIEWS[view] || VIEWS["/"];
  document.body.dataset.view = view;
  document.body.dataset.loading = "1";
  try { await handler(params); }
  catch (e) { showError(e.message); app().replaceChildren(el("p", {}, el("a", {href: "#/"}, "back to the index"))); }
  finally { delete document.body.dataset.loading; }
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
