// Conveyor's ops dashboard: one page, no build step. Chart.js and Tabulator are vendored under
// /static/vendor and loaded as classic scripts (window.Chart, window.Tabulator) before this module.
/* global Chart, Tabulator */

const KEY_STORAGE = "conveyor.apiKey";
const CHANGES_EVERY_MS = 2000; // the change counter is polled this often
const LIVE_STATE_EVERY_MS = 5000; // backlog and health are state, not events: refreshed anyway
const REJECTED_PAGE = 24;
const WINDOWS = { "15m": 15 * 60, "1h": 3600, "24h": 86400, "7d": 7 * 86400, all: null };
const TABS = ["funnel", "throughput", "backlog", "cleaning", "vendors", "asset", "health"];
const STAGE_COLORS = {
  uploaded: "#64748b", stored: "#2563eb", cleaned: "#16a34a", rejected: "#dc2626",
  in_labeling: "#7c3aed", dispatched: "#8b5cf6", submitted: "#0891b2", accepted: "#059669",
  rework: "#d97706", qc_rejected: "#be123c", exported: "#0f766e",
};
const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#be123c",
  "#4d7c0f", "#c026d3", "#0f766e", "#92400e", "#475569"];

Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;
Chart.defaults.font.size = 11;
Chart.defaults.plugins.legend.labels.boxWidth = 12;

// ---------------------------------------------------------------- small DOM helpers

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

const fmtInt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
const fmtPct = (x) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(1)} %`);
const fmtNum = (x, digits = 2) =>
  x === null || x === undefined || Number.isNaN(Number(x)) ? "–" : Number(x).toFixed(digits);
/** A measured value, as many decimals as its size calls for. */
function fmtVal(x) {
  if (x === null || x === undefined || Number.isNaN(Number(x))) return "–";
  const v = Number(x);
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString("en-US");
  if (a >= 100 || Number.isInteger(v)) return v.toFixed(0);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}
const clock = (d = new Date()) => d.toLocaleTimeString("en-GB", { hour12: false });

function fmtTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function bucketLabel(iso, bucketSeconds) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (bucketSeconds >= 86400) return `${d.getMonth() + 1}/${d.getDate()}`;
  if (bucketSeconds >= 3600) return `${d.getMonth() + 1}/${d.getDate()} ${hm}`;
  return hm;
}

/** Every bucket start of a chart (ISO strings), from the window's start (or the first point)
 * to its end (or now), so a quiet bucket shows as zero rather than being skipped. */
function bucketAxis(data, times) {
  const step = data.bucket_seconds * 1000;
  const known = times.map((t) => Date.parse(t));
  const first = data.since ? Date.parse(data.since) : Math.min(...known);
  const last = data.until ? Date.parse(data.until) : Date.now();
  if (!step || !Number.isFinite(first) || (last - first) / step > 400) return [...times].sort();
  const out = new Set(times);
  const iso = new Map(times.map((t) => [Date.parse(t), t]));
  for (let t = Math.floor(first / step) * step; t <= last; t += step) {
    if (![...iso.keys()].some((k) => Math.abs(k - t) < 1000)) out.add(new Date(t).toISOString());
  }
  return [...out].sort((a, b) => Date.parse(a) - Date.parse(b));
}

const sameBucket = (a, b) => Math.abs(Date.parse(a) - Date.parse(b)) < 1000;

function bucketText(seconds) {
  if (!seconds) return "";
  if (seconds % 86400 === 0) return `per ${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `per ${seconds / 3600} h`;
  return `per ${seconds / 60} min`;
}

// ---------------------------------------------------------------- the API

class AuthError extends Error {}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const state = {
  key: sessionStorage.getItem(KEY_STORAGE),
  dataset: "",
  window: "24h",
  tab: "funnel",
  param: null, // e.g. the asset id of #asset/<id>
  eventsApplied: null,
};

function windowParams() {
  const params = {};
  if (state.dataset) params.dataset = state.dataset;
  const span = WINDOWS[state.window];
  if (span) params.since = new Date(Date.now() - span * 1000).toISOString();
  return params;
}

async function request(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
  }
  let response;
  try {
    response = await fetch(url, { headers: { "X-API-Key": state.key || "" } });
  } catch (err) {
    throw new ApiError(0, "network", `dashboard unreachable (${err.message})`);
  }
  if (response.status === 401) {
    askForKey("The API key was refused (401): it is unknown, revoked or mistyped. Enter a valid key.");
    throw new AuthError("unauthorized");
  }
  return response;
}

async function api(path, params = {}) {
  const response = await request(path, params);
  if (!response.ok) {
    let code = `http_${response.status}`;
    let message = response.statusText || `HTTP ${response.status}`;
    try {
      const body = await response.json();
      if (body && body.error) ({ code, message } = body.error);
      else if (body && body.detail) message = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch {
      // not JSON: keep the status text
    }
    if (response.status === 404 && code === "http_404") message = "not available on this server yet (404)";
    throw new ApiError(response.status, code, message);
  }
  return response.json();
}

// ---------------------------------------------------------------- panels, tables, charts

/** A titled box whose body shows data, an empty-state line or "unavailable: ...". */
class Panel {
  constructor(id) {
    this.root = document.getElementById(id);
    this.msg = $(".msg", this.root);
    this.body = $(".body", this.root);
  }
  ok() {
    this.msg.textContent = "";
    this.msg.classList.remove("error");
    this.body.hidden = false;
  }
  empty(text) {
    this.msg.textContent = text;
    this.msg.classList.remove("error");
    this.body.hidden = true;
  }
  fail(err) {
    if (err instanceof AuthError) return;
    this.msg.textContent = `unavailable: ${err.message}`;
    this.msg.classList.add("error");
    this.body.hidden = true;
  }
  /** Run ``fill`` on fetched data; errors go into the panel (a 401 goes on up). */
  load(fetcher, fill) {
    return fetchInto([this], fetcher, fill);
  }
}

/** Fetch once for several panels: on failure each says "unavailable: <why>". Resolves to
 * whether it worked; only a refused key (AuthError) is thrown on. */
async function fetchInto(panels, fetcher, fill) {
  try {
    fill(await fetcher());
    return true;
  } catch (err) {
    if (!(err instanceof AuthError) && !(err instanceof ApiError)) console.error(err);
    for (const panel of panels) panel.fail(err);
    if (err instanceof AuthError) throw err;
    return false;
  }
}

/** A Tabulator table whose rows are replaced in place (scroll and sort kept). */
class Table {
  constructor(container, columns, options = {}) {
    this.pending = null;
    this.built = false;
    this.table = new Tabulator(container, {
      layout: "fitColumns",
      renderVertical: "basic",
      maxHeight: options.maxHeight || 420,
      placeholder: options.placeholder || "nothing here yet",
      index: options.index || "id",
      columns: columns.map(({ width, ...c }) => ({
        headerSort: true, tooltip: true, minWidth: width || 60, widthGrow: c.widthGrow || 1, ...c,
      })),
      rowFormatter: options.onRowClick ? (row) => row.getElement().classList.add("clickable") : undefined,
      data: [],
    });
    this.table.on("tableBuilt", () => {
      this.built = true;
      if (this.pending) this.table.replaceData(this.pending);
      this.pending = null;
    });
    if (options.onRowClick) this.table.on("rowClick", (_e, row) => options.onRowClick(row.getData()));
  }
  set(rows) {
    if (this.built) this.table.replaceData(rows);
    else this.pending = rows;
  }
}

function lineChart(canvas, yTitle) {
  return new Chart(canvas, {
    type: "line",
    data: { labels: [], datasets: [] },
    options: {
      interaction: { mode: "index", intersect: false },
      elements: { point: { radius: 1.5 }, line: { borderWidth: 1.5, tension: 0.2 } },
      scales: {
        x: { ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 12 } },
        y: { beginAtZero: true, title: { display: !!yTitle, text: yTitle } },
      },
      plugins: { legend: { position: "bottom" } },
    },
  });
}

function setChart(chart, labels, datasets) {
  chart.data.labels = labels;
  // Same datasets by label keep their objects (Chart.js then updates in place).
  const old = new Map(chart.data.datasets.map((d) => [d.label, d]));
  chart.data.datasets = datasets.map((d) => Object.assign(old.get(d.label) || {}, d));
  chart.update("none");
}

// Numbers with a few formatters Tabulator cells share.
const numCol = (title, field, extra = {}) => ({
  title, field, hozAlign: "right", sorter: "number", cssClass: "num",
  formatter: (cell) => fmtInt(cell.getValue()), ...extra,
});
const timeCol = (title, field, extra = {}) => ({
  title, field, sorter: "string", formatter: (cell) => fmtTime(cell.getValue()), width: 150, ...extra,
});
const errorText = (cell) => el("span", { class: "err", text: cell.getValue() || "" });
const boolCol = (title, field) => ({
  title, field, hozAlign: "center", width: 70,
  formatter: (cell) => {
    const v = cell.getValue();
    if (v === null || v === undefined) return "–";
    return el("span", { class: v ? "yes" : "no", text: v ? "yes" : "no" });
  },
});

// ---------------------------------------------------------------- thumbnails

/** Thumbnails need the API key, so they are fetched and shown as blob: URLs (revoked when no
 * longer shown). */
const thumbs = {
  cache: new Map(), // thumbnail URL path -> Promise<{url} | {missing: code}>
  get(path) {
    if (!this.cache.has(path)) {
      const loading = (async () => {
        const response = await request(path);
        if (!response.ok) {
          let code = `http_${response.status}`;
          try { code = (await response.json()).error.code || code; } catch { /* keep */ }
          return { missing: code };
        }
        return { url: URL.createObjectURL(await response.blob()) };
      })().catch((err) => ({ missing: err instanceof AuthError ? "unauthorized" : "unreachable" }));
      this.cache.set(path, loading);
    }
    return this.cache.get(path);
  },
  /** Fill a .thumb box: the image, or a placeholder naming the media type. */
  async show(box, path, mediaType) {
    box.dataset.thumb = path || "";
    const placeholder = (why) => {
      box.replaceChildren(el("span", {}, mediaType || "unknown type", el("br"), why));
      box.classList.add("placeholder");
    };
    if (!path) return placeholder("no thumbnail");
    const got = await this.get(path);
    if (box.dataset.thumb !== path) return; // reused for another asset meanwhile
    if (got.url) {
      const current = $("img", box);
      if (current && current.src === got.url) return;
      box.classList.remove("placeholder");
      box.replaceChildren(el("img", { src: got.url, alt: "thumbnail" }));
    } else {
      placeholder(got.missing === "no_thumbnail" ? "no preview" : got.missing);
    }
  },
  /** Revoke the blob URLs no box on the page shows any more. */
  sweep() {
    const shown = new Set($$("[data-thumb]").map((b) => b.dataset.thumb));
    for (const [path, loading] of this.cache) {
      if (shown.has(path)) continue;
      this.cache.delete(path);
      loading.then((got) => got.url && URL.revokeObjectURL(got.url));
    }
  },
};

// ---------------------------------------------------------------- views

const views = {};

// Funnel ---------------------------------------------------------

views.funnel = {
  init() {
    this.chartPanel = new Panel("p-funnel-chart");
    this.tablePanel = new Panel("p-funnel-table");
    this.lossPanel = new Panel("p-funnel-losses");
    this.waitPanel = new Panel("p-funnel-waiting");
    this.chart = new Chart($("canvas", this.chartPanel.root), {
      type: "bar",
      data: { labels: [], datasets: [] },
      options: { indexAxis: "y", plugins: { legend: { display: false } },
        scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    this.table = new Table($(".tbl", this.tablePanel.root), [
      { title: "stage", field: "stage", width: 110 },
      numCol("assets", "count", { width: 90 }),
      { title: "what it counts", field: "meaning", widthGrow: 3, headerSort: false },
    ], { index: "stage", placeholder: "no uploads in this window yet" });
    this.losses = new Table($(".tbl", this.lossPanel.root), [
      { title: "stage", field: "stage", width: 90 },
      numCol("lost", "lost", { width: 70 }),
      { title: "share", field: "share", hozAlign: "right", width: 80, formatter: (c) => fmtPct(c.getValue()) },
      { title: "reasons", field: "reasons", widthGrow: 3, headerSort: false,
        formatter: (c) => el("span", {}, (c.getValue() || []).map((r) =>
          el("span", {}, el("span", { class: "code", text: r.code }), ` ×${fmtInt(r.count)}  `))) },
    ], { index: "stage", placeholder: "nothing lost in this window" });
  },
  /** The funnel, asked for before the view is built (see refresh). */
  request() {
    return api("/v1/funnel", windowParams());
  },
  async load(requested) {
    const panels = [this.chartPanel, this.tablePanel, this.lossPanel, this.waitPanel];
    await fetchInto(panels, () => requested || this.request(), (data) => {
      const stages = data.stages;
      const total = stages.reduce((sum, s) => sum + s.count, 0);
      $("#funnel-stats").replaceChildren(...stages.map((s) =>
        el("div", { class: "stat", "data-stage": s.stage, style: `--c:${STAGE_COLORS[s.stage] || "#999"}`, title: s.meaning },
          el("span", { class: "n", text: fmtInt(s.count) }), el("span", { class: "l", text: s.stage.replace("_", " ") }))));
      if (total === 0) {
        this.chartPanel.empty("no uploads in this window yet");
        this.tablePanel.empty("no uploads in this window yet");
      } else {
        this.chartPanel.ok();
        this.tablePanel.ok();
      }
      setChart(this.chart, stages.map((s) => s.stage.replace("_", " ")), [{
        label: "assets", data: stages.map((s) => s.count),
        backgroundColor: stages.map((s) => STAGE_COLORS[s.stage] || "#999"),
      }]);
      this.table.set(stages);
      const lost = data.losses.filter((l) => l.lost > 0);
      if (lost.length) this.lossPanel.ok(); else this.lossPanel.empty("nothing lost in this window");
      this.losses.set(data.losses);
      const waiting = Object.entries(data.waiting || {});
      this.waitPanel.ok();
      $(".stats", this.waitPanel.root).replaceChildren(...waiting.map(([name, n]) =>
        el("div", { class: "stat", "data-waiting": name }, el("span", { class: "n", text: fmtInt(n) }),
          el("span", { class: "l", text: `waiting for ${name}` }))));
    });
  },
};

// Throughput & latency --------------------------------------------

views.throughput = {
  init() {
    this.panel = new Panel("p-throughput");
    this.chart = lineChart($("canvas", this.panel.root), "events");
    this.latency = {};
    for (const name of ["upload_to_cleaned", "cleaned_to_dispatched"]) {
      const panel = new Panel(`p-latency-${name}`);
      this.latency[name] = { panel, chart: lineChart($("canvas", panel.root), "seconds") };
    }
  },
  async load() {
    const params = windowParams();
    await Promise.all([
      this.panel.load(() => api("/v1/throughput", params), (data) => {
        $(".bucket", this.panel.root).textContent = bucketText(data.bucket_seconds);
        const times = bucketAxis(data, [...new Set(data.series.flatMap((s) => s.points.map((p) => p.t)))]);
        const any = data.series.some((s) => s.points.some((p) => p.events > 0));
        if (any) this.panel.ok(); else this.panel.empty("no events in this window yet");
        setChart(this.chart, times.map((t) => bucketLabel(t, data.bucket_seconds)),
          data.series.map((s) => {
            const color = STAGE_COLORS[s.stage] || "#999";
            const at = (t) => (s.points.find((p) => sameBucket(p.t, t)) || { events: 0 }).events;
            return { label: s.stage, data: times.map(at), borderColor: color, backgroundColor: color };
          }));
      }),
      (async () => {
        let data;
        try {
          data = await api("/v1/latency", params);
        } catch (err) {
          for (const l of Object.values(this.latency)) l.panel.fail(err);
          return;
        }
        for (const [name, { panel, chart }] of Object.entries(this.latency)) {
          const series = data.series.find((s) => s.name === name);
          const points = series ? series.points : [];
          if (points.length) panel.ok(); else panel.empty("no measurements in this window yet");
          const times = bucketAxis(data, points.map((p) => p.t));
          const at = (t, f) => { const p = points.find((q) => sameBucket(q.t, t)); return p ? p[f] : null; };
          setChart(chart, times.map((t) => bucketLabel(t, data.bucket_seconds)), [
            { label: "p50", data: times.map((t) => at(t, "p50")), borderColor: "#2563eb", backgroundColor: "#2563eb" },
            { label: "p95", data: times.map((t) => at(t, "p95")), borderColor: "#dc2626", backgroundColor: "#dc2626" },
          ]);
        }
      })(),
    ]);
  },
};

// Backlog -------------------------------------------------------------

views.backlog = {
  everyMs: LIVE_STATE_EVERY_MS,
  init() {
    this.panels = Object.fromEntries(["p-lag", "p-outbox", "p-dead", "p-vendor-tasks", "p-jobs"].map((id) => [id, new Panel(id)]));
    const t = (id, cols, opts) => new Table($(".tbl", this.panels[id].root), cols, opts);
    this.lag = t("p-lag", [
      { title: "consumer group", field: "group", widthGrow: 2 },
      { title: "topic", field: "topic", widthGrow: 2 },
      numCol("lag", "lag", { width: 80,
        formatter: (c) => el("span", { class: c.getValue() > 0 ? "err" : "" , text: fmtInt(c.getValue()) }) }),
      numCol("committed", "committed", { width: 100 }),
      numCol("end", "end", { width: 100 }),
    ], { index: "key", placeholder: "no Conveyor consumer groups found" });
    this.outbox = t("p-outbox", [
      { title: "service", field: "service", width: 110 },
      numCol("waiting", "waiting", { width: 80 }),
      { title: "error", field: "error", widthGrow: 2, formatter: errorText },
    ], { index: "service", placeholder: "no services report an outbox" });
    this.dead = t("p-dead", [
      timeCol("at", "at"),
      { title: "consumer group", field: "consumer_group", widthGrow: 1 },
      { title: "topic", field: "original_topic", widthGrow: 1 },
      { title: "event type", field: "original_type", widthGrow: 1 },
      { title: "error", field: "error", widthGrow: 3, formatter: errorText, cssClass: "wrap-cell" },
    ], { index: "event_id", placeholder: "no dead letters" });
    this.vendors = t("p-vendor-tasks", [
      { title: "vendor", field: "name", widthGrow: 2 },
      { title: "kind", field: "kind", width: 110 },
      numCol("dispatched", "dispatched", { width: 95 }),
      numCol("rework", "rework", { width: 80 }),
    ], { index: "vendor_id", placeholder: "no vendors registered" });
    this.jobs = t("p-jobs", [
      { title: "job", field: "name", widthGrow: 2 },
      { title: "state", field: "state", width: 90 },
      numCol("queued", "queued", { width: 80 }),
    ], { index: "job_id", placeholder: "no labeling jobs" });
  },
  async load() {
    const p = this.panels;
    let data;
    try {
      data = await api("/v1/backlog", { dead_letters_limit: 50 });
    } catch (err) {
      for (const panel of Object.values(p)) panel.fail(err);
      if (err instanceof AuthError) throw err;
      return;
    }
    for (const panel of Object.values(p)) panel.ok();
    if (data.lag_error) p["p-lag"].fail(new Error(`Kafka offsets: ${data.lag_error}`));
    this.lag.set((data.lag || []).map((r) => ({ ...r, key: `${r.group}|${r.topic}` })));
    this.outbox.set(data.outbox || []);
    const dead = data.dead_letters || { count: 0, items: [] };
    $(".count", p["p-dead"].root).textContent = `(${fmtInt(dead.count)})`;
    this.dead.set(dead.items || []);
    this.vendors.set(data.vendors || []);
    this.jobs.set(data.jobs || []);
  },
};

// Cleaning ---------------------------------------------------------

views.cleaning = {
  init() {
    this.reasonsPanel = new Panel("p-reasons-chart");
    this.totalsPanel = new Panel("p-reasons-table");
    this.histPanel = new Panel("p-histograms");
    this.rejPanel = new Panel("p-rejected");
    this.dupPanel = new Panel("p-duplicates");
    this.reasonsChart = new Chart($("canvas", this.reasonsPanel.root), {
      type: "bar",
      data: { labels: [], datasets: [] },
      options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { position: "bottom" } } },
    });
    this.totals = new Table($(".tbl", this.totalsPanel.root), [
      { title: "kind", field: "kind", width: 80 },
      { title: "reason", field: "code", widthGrow: 2, formatter: (c) =>
        el("span", { class: c.getData().kind === "flagged" ? "code flag" : "code", text: c.getValue() }) },
      numCol("assets", "count", { width: 80 }),
    ], { index: "key", placeholder: "no rejections or flags in this window" });
    this.minis = new Map(); // metric -> {box, chart}
    this.rejected = { items: [], cursor: null, key: null };
    $(".more", this.rejPanel.root).addEventListener("click", () => this.loadMoreRejected());
  },
  async load() {
    const params = windowParams();
    await Promise.all([
      fetchInto([this.reasonsPanel, this.totalsPanel], () => api("/v1/cleaning/reasons", params), (data) => {
        $(".bucket", this.reasonsPanel.root).textContent = bucketText(data.bucket_seconds);
        const times = bucketAxis(data, [...new Set(data.series.flatMap((s) => s.points.map((p) => p.t)))]);
        const empty = !data.totals.length;
        if (empty) {
          this.reasonsPanel.empty("no rejections or flags in this window yet");
          this.totalsPanel.empty("no rejections or flags in this window yet");
        } else {
          this.reasonsPanel.ok();
          this.totalsPanel.ok();
        }
        setChart(this.reasonsChart, times.map((t) => bucketLabel(t, data.bucket_seconds)),
          data.series.map((s, i) => {
            const at = (t) => (s.points.find((p) => sameBucket(p.t, t)) || { count: 0 }).count;
            const color = PALETTE[i % PALETTE.length];
            return { label: `${s.kind === "flagged" ? "flag" : "reject"}: ${s.code}`, data: times.map(at),
              backgroundColor: s.kind === "flagged" ? `${color}88` : color, stack: s.kind };
          }));
        this.totals.set(data.totals.map((t) => ({ ...t, key: `${t.kind}|${t.code}` })));
      }),
      this.histPanel.load(() => api("/v1/cleaning/histograms", { ...params, bins: 30 }), (data) => this.fillHistograms(data)),
      this.refreshRejected(params),
      this.loadDuplicates(),
    ]);
    thumbs.sweep();
  },
  fillHistograms(data) {
    const metrics = data.metrics || [];
    if (!metrics.length) return this.histPanel.empty("no cleaned or rejected images in this window yet");
    this.histPanel.ok();
    const box = $(".minis", this.histPanel.root);
    const seen = new Set();
    for (const m of metrics) {
      seen.add(m.metric);
      let mini = this.minis.get(m.metric);
      if (!mini) {
        const canvas = el("canvas");
        const node = el("div", { class: "mini", "data-metric": m.metric }, el("h3", {}, m.metric, " ", el("small")), el("div", { class: "chart" }, canvas));
        box.append(node);
        const chart = new Chart(canvas, {
          type: "bar", data: { labels: [], datasets: [] },
          options: { plugins: { legend: { display: false } },
            scales: { x: { ticks: { maxTicksLimit: 5, maxRotation: 0 } }, y: { beginAtZero: true, ticks: { precision: 0, maxTicksLimit: 4 } } },
            datasets: { bar: { barPercentage: 1, categoryPercentage: 1 } } },
        });
        mini = { node, chart };
        this.minis.set(m.metric, mini);
      }
      $("small", mini.node).textContent = m.min === m.max ? `n=${fmtInt(m.count)} · all ${fmtVal(m.min)}` : `n=${fmtInt(m.count)} · ${fmtVal(m.min)} … ${fmtVal(m.max)}`;
      setChart(mini.chart, m.bins.map((b) => fmtVal(b.low)),
        [{ label: m.metric, data: m.bins.map((b) => b.count), backgroundColor: "#2563eb" }]);
    }
    for (const [name, mini] of this.minis) {
      if (!seen.has(name)) { mini.chart.destroy(); mini.node.remove(); this.minis.delete(name); }
    }
  },
  rejectedCard(item) {
    const box = el("div", { class: "thumb" });
    thumbs.show(box, item.thumbnail_url, item.media_type);
    return el("div", { class: "card", "data-asset": item.asset_id },
      box,
      el("a", { class: "name", href: `#asset/${item.asset_id}`, title: item.filename || item.asset_id, text: item.filename || item.asset_id }),
      el("div", { class: "when", text: `${fmtTime(item.verdict_at)}${state.dataset ? "" : ` · ${item.dataset_slug || ""}`}` }),
      el("ul", { class: "reasons" }, (item.reasons || []).map((r) =>
        el("li", { title: r.value !== null && r.value !== undefined ? `value ${fmtNum(r.value, 3)}, threshold ${fmtNum(r.threshold, 3)}` : "" },
          el("span", { class: "code", text: r.code }), " ", r.message || ""))));
  },
  /** Re-read as many rejected images as are shown; cards that stay are kept (no flicker). */
  async refreshRejected(params) {
    const filterKey = JSON.stringify({ d: state.dataset, w: state.window });
    const reset = this.rejected.key !== filterKey;
    const limit = reset ? REJECTED_PAGE : Math.min(Math.max(this.rejected.items.length, REJECTED_PAGE), 100);
    await this.rejPanel.load(() => api("/v1/cleaning/rejected", { ...params, limit }), (data) => {
      this.rejected = { items: data.items, cursor: data.next_cursor, key: filterKey };
      this.renderRejected();
    });
  },
  async loadMoreRejected() {
    if (!this.rejected.cursor) return;
    const button = $(".more", this.rejPanel.root);
    button.disabled = true;
    await this.rejPanel.load(() => api("/v1/cleaning/rejected", { ...windowParams(), limit: REJECTED_PAGE, cursor: this.rejected.cursor }), (data) => {
      const have = new Set(this.rejected.items.map((i) => i.asset_id));
      this.rejected.items.push(...data.items.filter((i) => !have.has(i.asset_id)));
      this.rejected.cursor = data.next_cursor;
      this.renderRejected();
    }).finally(() => { button.disabled = false; });
  },
  renderRejected() {
    const { items, cursor } = this.rejected;
    const grid = $(".cards", this.rejPanel.root);
    if (!items.length) {
      grid.replaceChildren();
      this.rejPanel.empty("no rejected images in this window");
      $(".more", this.rejPanel.root).hidden = true;
      return;
    }
    this.rejPanel.ok();
    const existing = new Map($$(".card", grid).map((c) => [c.dataset.asset, c]));
    const cards = items.map((item) => {
      const old = existing.get(item.asset_id);
      const signature = JSON.stringify(item.reasons);
      if (old && old.dataset.sig === signature) return old;
      const card = this.rejectedCard(item);
      card.dataset.sig = signature;
      return card;
    });
    // Move nodes only where the order changed.
    cards.forEach((card, i) => { if (grid.children[i] !== card) grid.insertBefore(card, grid.children[i] || null); });
    while (grid.children.length > cards.length) grid.lastElementChild.remove();
    $(".more", this.rejPanel.root).hidden = !cursor;
  },
  async loadDuplicates() {
    const panel = this.dupPanel;
    if (!state.dataset) {
      $(".dupes", panel.root).replaceChildren();
      return panel.empty("choose a dataset above to see its duplicate groups");
    }
    await panel.load(() => api("/v1/cleaning/duplicates", { dataset: state.dataset }), (data) => {
      const box = $(".dupes", panel.root);
      if (data.error) return panel.fail(new Error(data.error));
      if (!data.groups.length) { box.replaceChildren(); return panel.empty("no duplicates in this dataset"); }
      panel.ok();
      const signature = JSON.stringify(data.groups.map((g) => [g.original.asset_id, g.copies.map((c) => c.asset_id)]));
      if (box.dataset.sig === signature) return;
      box.dataset.sig = signature;
      const card = (item, extra, cls) => {
        const thumb = el("div", { class: "thumb" });
        thumbs.show(thumb, item.thumbnail_url, null);
        return el("div", { class: `card ${cls}`, "data-asset": item.asset_id }, thumb,
          el("a", { class: "name", href: `#asset/${item.asset_id}`, text: item.filename || item.asset_id, title: item.filename || "" }),
          el("div", { class: "when" }, extra));
      };
      box.replaceChildren(...data.groups.map((g) => el("div", { class: "dupe-group" },
        card(g.original, "original", "original"),
        g.copies.map((c) => card(c, el("span", {}, el("span", { class: "code", text: c.code }),
          c.distance !== null && c.distance !== undefined ? ` distance ${c.distance}` : ""), "copy")))));
    });
  },
};

// Vendors ---------------------------------------------------------------

const figure = (card, name) => {
  if (!card) return null;
  if (name === "submitted") return card.counters ? card.counters.submitted : null;
  const f = card.figures ? card.figures[name] : undefined;
  if (f === null || f === undefined) return null;
  return typeof f === "object" ? f.value : f;
};

views.vendors = {
  init() {
    this.tablePanel = new Panel("p-vendors-table");
    this.chartPanel = new Panel("p-vendors-chart");
    this.trendPanel = new Panel("p-vendors-trend");
    const fig = (title, name, fmt) => ({ title, field: name, hozAlign: "right", sorter: "number",
      mutator: (_v, row) => figure(row.scorecard, name), formatter: (c) => fmt(c.getValue()) });
    this.table = new Table($(".tbl", this.tablePanel.root), [
      { title: "vendor", field: "name", widthGrow: 2, minWidth: 120 },
      { title: "kind", field: "kind", width: 100 },
      numCol("capacity", "capacity", { width: 80 }),
      fig("answers", "submitted", fmtInt),
      fig("turnaround p50", "turnaround_p50_seconds", (v) => (v === null ? "–" : `${fmtNum(v, 1)} s`)),
      fig("turnaround p95", "turnaround_p95_seconds", (v) => (v === null ? "–" : `${fmtNum(v, 1)} s`)),
      fig("accepted", "acceptance_rate", fmtPct),
      fig("rework", "rework_rate", fmtPct),
      fig("rejected", "rejection_rate", fmtPct),
      fig("gold F1", "gold_f1", (v) => fmtNum(v, 3)),
      fig("gold class acc.", "gold_class_accuracy", fmtPct),
      fig("agreement", "agreement", (v) => fmtNum(v, 3)),
      fig("answers/h", "throughput_per_hour", (v) => fmtNum(v, 1)),
    ], { index: "vendor_id", placeholder: "no vendors registered yet" });
    this.chart = new Chart($("canvas", this.chartPanel.root), {
      type: "bar", data: { labels: [], datasets: [] },
      options: { scales: { y: { beginAtZero: true, max: 1, ticks: { callback: (v) => `${Math.round(v * 100)}%` } } },
        plugins: { legend: { position: "bottom" } } },
    });
    this.trend = lineChart($("canvas", this.trendPanel.root), "");
    $("#trend-figure").addEventListener("change", () => this.fillTrend());
    this.items = [];
  },
  async load() {
    const panels = [this.tablePanel, this.chartPanel, this.trendPanel];
    await fetchInto(panels, () => api("/v1/vendors", windowParams()), (data) => {
      this.items = data.items || [];
      if (!this.items.length && data.error) this.tablePanel.fail(new Error(data.error));
      else if (!this.items.length && state.dataset) this.tablePanel.empty("no vendor has worked on this dataset yet (choose “all datasets” to see every vendor)");
      else if (!this.items.length) this.tablePanel.empty("no vendors yet: register one with labeling-dispatch, answers will show here");
      else this.tablePanel.ok();
      this.table.set(this.items.map((v) => ({ ...v })));
      const scored = this.items.filter((v) => v.scorecard);
      if (data.error) {
        this.chartPanel.fail(new Error(`QC's figures: ${data.error}`));
      } else if (!scored.length) {
        this.chartPanel.empty(this.items.length ? "no answers judged in this window yet" : "no vendors yet");
      } else {
        this.chartPanel.ok();
        const rates = [["acceptance_rate", "accepted"], ["rework_rate", "rework"], ["rejection_rate", "rejected"], ["gold_class_accuracy", "gold class acc."], ["gold_f1", "gold F1"]];
        setChart(this.chart, rates.map(([, label]) => label), scored.map((v, i) => ({
          label: v.name, data: rates.map(([name]) => figure(v.scorecard, name)), backgroundColor: PALETTE[i % PALETTE.length] })));
      }
      this.fillTrend();
    });
  },
  fillTrend() {
    const name = $("#trend-figure").value;
    const withTrend = this.items.filter((v) => (v.trend || []).length);
    if (!withTrend.length) return this.trendPanel.empty("no day-by-day figures yet");
    this.trendPanel.ok();
    const dayOf = (d) => d.day || (d.t || "").slice(0, 10);
    const days = [...new Set(withTrend.flatMap((v) => v.trend.map(dayOf)))].sort();
    setChart(this.trend, days, withTrend.map((v, i) => {
      const at = new Map(v.trend.map((d) => [dayOf(d), figure(d, name)]));
      const color = PALETTE[i % PALETTE.length];
      return { label: v.name, data: days.map((d) => at.get(d) ?? null), borderColor: color, backgroundColor: color, spanGaps: true };
    }));
  },
};

// Asset ---------------------------------------------------------------------

views.asset = {
  init() {
    this.searchPanel = new Panel("p-search");
    this.assetPanel = new Panel("p-asset");
    this.qualityPanel = new Panel("p-quality");
    this.metaPanel = new Panel("p-metadata");
    this.timelinePanel = new Panel("p-timeline");
    this.results = new Table($(".tbl", this.searchPanel.root), [
      { title: "file", field: "filename", widthGrow: 2 },
      { title: "dataset", field: "dataset_slug", widthGrow: 1 },
      { title: "type", field: "media_type", width: 100 },
      timeCol("uploaded", "uploaded_at"),
      { title: "verdict", field: "verdict", width: 80 },
      { title: "decision", field: "decision", width: 80 },
      { title: "asset id", field: "asset_id", widthGrow: 2, cssClass: "mono" },
      { title: "sha256", field: "sha256", widthGrow: 1, cssClass: "mono", formatter: (c) => (c.getValue() || "").slice(0, 16) + "…" },
    ], { index: "asset_id", maxHeight: 260, placeholder: "search by asset id, file name or sha256",
      onRowClick: (row) => { location.hash = hashFor("asset", row.asset_id); } });
    this.timeline = new Table($(".tbl", this.timelinePanel.root), [
      { title: "seq", field: "seq", width: 70, hozAlign: "right", sorter: "number" },
      timeCol("time", "time"),
      { title: "type", field: "type", widthGrow: 2 },
      { title: "actor", field: "actor", widthGrow: 1 },
      { title: "source", field: "source", widthGrow: 1 },
      { title: "event id", field: "event_id", widthGrow: 2, cssClass: "mono" },
    ], { index: "seq", maxHeight: 500, placeholder: "no audit records for this asset yet" });
    $("#search-form").addEventListener("submit", (e) => { e.preventDefault(); this.search(); });
    this.searchPanel.ok();
    this.shownId = null;
  },
  async search() {
    const q = $("#search-q").value.trim();
    if (!q) return;
    await this.searchPanel.load(() => api("/v1/assets/search", { q, limit: 50 }), (data) => {
      if (data.items.length) this.searchPanel.ok(); else this.searchPanel.empty(`nothing matches “${q}”`);
      this.results.set(data.items);
      if (data.items.length === 1 && state.param !== data.items[0].asset_id) location.hash = hashFor("asset", data.items[0].asset_id);
    });
  },
  async load() {
    const id = state.param;
    $("#asset-detail").hidden = !id;
    if (!id) return;
    if (this.shownId !== id) {
      $(".asset-id", this.assetPanel.root).textContent = id;
      for (const p of [this.qualityPanel, this.metaPanel, this.timelinePanel]) p.empty("loading…");
    }
    const panels = [this.assetPanel, this.qualityPanel, this.metaPanel, this.timelinePanel];
    await fetchInto(panels, () => api(`/v1/assets/${encodeURIComponent(id)}`), (data) => this.fill(id, data));
    thumbs.sweep();
  },
  fill(id, data) {
    this.shownId = id;
    this.assetPanel.ok();
    const a = data.asset || {};
    const root = this.assetPanel.root;
    thumbs.show($(".thumb", root), data.thumbnail_url, a.media_type);
    const chain = data.chain || {};
    const chainBadge = $(".chain", root);
    if (chain.ok === true) {
      chainBadge.className = "chain badge ok";
      chainBadge.textContent = `audit chain verified ✓${chain.records_checked !== undefined ? ` (${fmtInt(chain.records_checked)} records)` : ""}`;
    } else if (chain.ok === false) {
      const broken = chain.first_broken || {};
      chainBadge.className = "chain badge bad";
      chainBadge.textContent = `audit chain BROKEN${broken.seq !== undefined ? ` at record ${broken.seq}` : ""}${broken.reason ? `: ${broken.reason}` : ""}`;
    } else {
      chainBadge.className = "chain badge unknown";
      chainBadge.textContent = `audit chain not checked${chain.error ? `: ${chain.error}` : ""}`;
    }
    chainBadge.dataset.state = chain.ok === true ? "ok" : chain.ok === false ? "broken" : "unknown";
    const verdict = $(".verdict", root);
    verdict.className = `verdict badge ${a.verdict === "cleaned" ? "ok" : a.verdict === "rejected" ? "bad" : "unknown"}`;
    verdict.textContent = a.verdict ? `${a.verdict}${a.decision ? ` · QC ${a.decision}` : ""}` : "awaiting cleaning";
    const trace = $(".trace", root);
    const t = data.trace || {};
    if (t.url) { trace.href = t.url; trace.textContent = `open trace ${(t.trace_id || "").slice(0, 12)}… in the trace viewer ↗`; trace.hidden = false; }
    else { trace.removeAttribute("href"); trace.textContent = "no trace recorded"; }
    kvTable($(".facts", root), [
      ["file", a.filename], ["dataset", a.dataset_slug], ["media type", a.media_type],
      ["size", a.size_bytes !== null && a.size_bytes !== undefined ? `${fmtInt(a.size_bytes)} bytes` : null],
      ["source", a.source], ["uploaded", fmtTime(a.uploaded_at)], ["verdict at", fmtTime(a.verdict_at)],
      ["sha256", a.sha256], ["trace id", t.trace_id || a.trace_id],
    ]);
    $(".problems", root).replaceChildren(...(data.problems || []).map((p) => el("li", { text: p })));
    // Quality report
    const q = data.quality;
    if (!q) this.qualityPanel.empty("no quality report (not cleaned yet, or clean is unavailable)");
    else {
      this.qualityPanel.ok();
      const list = (items, cls) => el("ul", { class: "reasons" }, (items || []).map((r) =>
        el("li", {}, el("span", { class: cls, text: r.code }), " ", r.message || "",
          r.value !== null && r.value !== undefined ? ` (value ${fmtNum(r.value, 3)}, threshold ${fmtNum(r.threshold, 3)})` : "")));
      const metrics = Object.entries(q.metrics || {});
      $(".quality", this.qualityPanel.root).replaceChildren(...[
        el("div", {}, "status: ", el("b", { text: q.status || "–" }), q.duplicate_of ? el("span", {}, " · duplicate of ", el("a", { href: `#asset/${q.duplicate_of}`, text: q.duplicate_of })) : ""),
        (q.reasons || []).length ? [el("h3", { text: "reasons" }), list(q.reasons, "code")] : "",
        (q.flags || []).length ? [el("h3", { text: "flags" }), list(q.flags, "code flag")] : "",
        metrics.length ? [el("h3", { text: "metrics" }), kvTable(el("table", { class: "kv" }), metrics.map(([k, v]) => [k, typeof v === "number" ? fmtVal(v) : JSON.stringify(v)]))] : "",
      ].flat());
    }
    // Metadata from ingest
    const m = data.metadata;
    if (!m) this.metaPanel.empty("no metadata (ingest unavailable)");
    else {
      this.metaPanel.ok();
      kvTable($(".meta", this.metaPanel.root), Object.entries(m).map(([k, v]) => [k,
        k === "download_url" && v ? el("a", { href: v, target: "_blank", rel: "noopener", text: "download the original (presigned link)" })
          : v !== null && typeof v === "object" ? JSON.stringify(v) : v]));
    }
    const timeline = data.timeline;
    if (!timeline) this.timelinePanel.fail(new Error("the audit service did not answer"));
    else if (timeline.length) this.timelinePanel.ok();
    else this.timelinePanel.empty("no audit records for this asset yet");
    this.timeline.set(timeline || []);
  },
};

function kvTable(table, pairs) {
  table.replaceChildren(...pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => el("tr", { "data-key": k }, el("th", { text: k }), el("td", {}, v instanceof Node ? v : String(v)))));
  return table;
}

// Health ------------------------------------------------------------------

views.health = {
  everyMs: LIVE_STATE_EVERY_MS,
  init() {
    this.servicesPanel = new Panel("p-services");
    this.serversPanel = new Panel("p-servers");
    this.tracesPanel = new Panel("p-traces");
    this.services = new Table($(".tbl", this.servicesPanel.root), [
      { title: "service", field: "name", width: 110 },
      boolCol("up", "up"),
      boolCol("ready", "ready"),
      { title: "version", field: "version", width: 90 },
      { title: "error", field: "error", widthGrow: 1, formatter: errorText },
      { title: "checks", field: "checks", widthGrow: 3, headerSort: false, formatter: (c) => {
        const checks = c.getValue();
        if (!checks || typeof checks !== "object") return checks ? String(checks) : "";
        return el("span", {}, Object.entries(checks).map(([k, v]) => {
          const good = v === true || v === "ok";
          return el("span", { class: good ? "yes" : "no", text: `${k}: ${typeof v === "string" ? v : good ? "ok" : "failing"}  ` });
        }));
      } },
      { title: "url", field: "url", widthGrow: 1, cssClass: "mono" },
    ], { index: "name", placeholder: "no services reported" });
    this.servers = new Table($(".tbl", this.serversPanel.root), [
      { title: "server", field: "name", width: 100 },
      boolCol("up", "up"),
      { title: "version", field: "version", widthGrow: 1 },
      { title: "error", field: "error", widthGrow: 2, formatter: errorText },
    ], { index: "name", placeholder: "no servers reported" });
  },
  async load() {
    let data;
    try {
      data = await api("/v1/health");
    } catch (err) {
      for (const p of [this.servicesPanel, this.serversPanel, this.tracesPanel]) p.fail(err);
      if (err instanceof AuthError) throw err;
      return;
    }
    for (const p of [this.servicesPanel, this.serversPanel, this.tracesPanel]) p.ok();
    this.services.set(data.services || []);
    this.servers.set(data.servers || []);
    const tv = data.trace_viewer || {};
    const line = $(".trace-viewer", this.tracesPanel.root);
    line.replaceChildren(
      el("span", { class: tv.up ? "yes" : "no", text: tv.up ? "up " : "down " }),
      tv.url ? el("a", { href: tv.url, target: "_blank", rel: "noopener", text: tv.url }) : "no trace viewer configured",
      tv.up ? "" : " (make run starts Jaeger; it is built once on first use)");
  },
};

// ---------------------------------------------------------------- routing, filters, live updates

function parseHash() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const [tab, ...rest] = (path || "").split("/");
  const params = new URLSearchParams(query || "");
  return {
    tab: TABS.includes(tab) ? tab : "funnel",
    param: rest.length ? decodeURIComponent(rest.join("/")) : null,
    dataset: params.get("dataset") || "",
    window: params.get("window") in WINDOWS ? params.get("window") : "24h",
  };
}

function filterQuery() {
  const params = new URLSearchParams();
  if (state.dataset) params.set("dataset", state.dataset);
  if (state.window !== "24h") params.set("window", state.window);
  const text = params.toString();
  return text ? `?${text}` : "";
}

function hashFor(tab, param) {
  return `#${tab}${param ? `/${encodeURIComponent(param)}` : ""}${filterQuery()}`;
}

function syncNav() {
  for (const a of $$("#tabs a")) {
    a.href = hashFor(a.dataset.tab);
    a.classList.toggle("active", a.dataset.tab === state.tab);
  }
}

const initialised = new Set();
let timer = null;
let refreshing = null;
let again = false;

function stampUpdated(ok) {
  const node = $("#updated");
  node.textContent = ok ? `updated ${clock()}` : `update failed ${clock()}`;
  node.classList.toggle("stale", !ok);
}

/** Reload the current view's data in place; calls arriving meanwhile coalesce into one more. */
async function refresh() {
  if (!state.key) return;
  if (refreshing) { again = true; return refreshing; }
  const tab = state.tab;
  const view = views[tab];
  refreshing = (async () => {
    try {
      // A view that can ask for its data before it is built does so: the request is on its
      // way while the first show builds the view's charts and tables.
      const requested = view.request ? view.request() : null;
      if (!initialised.has(tab)) { view.init(); initialised.add(tab); }
      await view.load(requested);
      stampUpdated(true);
      // for people's tools and the benchmark: the view on screen shows loaded data
      document.body.dataset.ready = state.tab;
    } catch (err) {
      if (!(err instanceof AuthError)) { console.error(err); stampUpdated(false); }
    }
  })();
  await refreshing;
  refreshing = null;
  if (again) { again = false; await refresh(); }
}

function showView() {
  const indicator = $("#updated");
  indicator.textContent = "loading…";
  indicator.classList.remove("stale");
  delete document.body.dataset.ready;
  for (const tab of TABS) $(`#view-${tab}`).hidden = tab !== state.tab;
  syncNav();
  clearInterval(timer);
  timer = views[state.tab].everyMs ? setInterval(refresh, views[state.tab].everyMs) : null;
  refresh();
}

function onHashChange() {
  const route = parseHash();
  const filtersChanged = route.dataset !== state.dataset || route.window !== state.window;
  Object.assign(state, route);
  $("#f-dataset").value = state.dataset;
  $("#f-window").value = state.window;
  if (filtersChanged) ensureDatasetOption(state.dataset);
  showView();
}

function onFilterChange() {
  state.dataset = $("#f-dataset").value;
  state.window = $("#f-window").value;
  // Record the filter in the URL (a link reloads the same view) without a navigation.
  history.replaceState(null, "", hashFor(state.tab, state.param));
  syncNav();
  refresh();
}

function ensureDatasetOption(slug) {
  const select = $("#f-dataset");
  if (slug && ![...select.options].some((o) => o.value === slug)) select.append(el("option", { value: slug, text: slug }));
  select.value = slug;
}

async function loadDatasets() {
  const data = await api("/v1/datasets");
  const select = $("#f-dataset");
  const want = [["", "all datasets"], ...data.items.map((d) => [d.slug, `${d.name} (${fmtInt(d.assets)})`])];
  const have = [...select.options].map((o) => [o.value, o.textContent]);
  if (JSON.stringify(want) === JSON.stringify(have)) return;
  const current = state.dataset;
  select.replaceChildren(...want.map(([value, text]) => el("option", { value, text })));
  ensureDatasetOption(current);
}

/** Poll the change counter; a move means new events reached the projections. */
async function pollChanges() {
  if (!state.key) return;
  try {
    const data = await api("/v1/changes");
    if (state.eventsApplied !== null && data.events_applied !== state.eventsApplied) {
      state.eventsApplied = data.events_applied;
      loadDatasets().catch(() => {});
      if (!views[state.tab].everyMs) refresh();
    }
    state.eventsApplied = data.events_applied;
  } catch {
    // a failed poll is retried on the next tick; a 401 has brought the key form back
  }
}

// ---------------------------------------------------------------- the API key

function askForKey(message) {
  state.key = null;
  sessionStorage.removeItem(KEY_STORAGE);
  $("#login-msg").textContent = message || "";
  $("#login").hidden = false;
  $("#login-key").value = "";
  $("#login-key").focus();
}

async function start() {
  $("#login").hidden = true;
  ensureDatasetOption(state.dataset);
  // The counter is read before the first data: an event applied in between moves it.
  await pollChanges();
  if (!state.key) return; // a 401 brought the key form back
  // The dataset list and the view's data load side by side: the first paint waits for neither.
  loadDatasets().catch((err) => {
    if (!(err instanceof AuthError)) $("#updated").textContent = `unavailable: ${err.message}`;
  });
  showView();
}

function main() {
  Object.assign(state, parseHash());
  $("#f-window").value = state.window;
  $("#f-dataset").addEventListener("change", onFilterChange);
  $("#f-window").addEventListener("change", onFilterChange);
  window.addEventListener("hashchange", onHashChange);
  $("#signout").addEventListener("click", () => askForKey("Signed out."));
  $("#login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.key = $("#login-key").value.trim();
    if (!state.key) return;
    sessionStorage.setItem(KEY_STORAGE, state.key);
    $("#login-msg").textContent = "";
    start();
  });
  setInterval(pollChanges, CHANGES_EVERY_MS);
  syncNav();
  if (state.key) start(); else askForKey("");
}

main();
