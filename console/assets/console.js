// loopgate console: plain JavaScript, no framework, no build step.
//
// Every data call goes to the admin port with "Authorization: Bearer <token>";
// the token the operator pasted lives in sessionStorage (this tab only, gone
// when it closes). A 401 anywhere returns to the login box with the server's
// message. The page polls (EventSource cannot send the header):
//   every poll_ms:       /frontier, /lambda, /policy, /orchestrators
//   every chart_poll_ms: /console/charts.json, then each chart's SQL via /query
// Everything taken from the server is put in the page as text, never as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "loopgate.console.token";
  const $ = (id) => document.getElementById(id);
  const PALETTE = ["#2f6fdb", "#e8590c", "#2b8a3e", "#9c36b5", "#c92a2a", "#0c8599",
    "#f59f00", "#5c7cfa", "#a61e4d", "#74b816", "#495057", "#d6336c", "#1098ad", "#ae3ec9"];

  const state = {
    token: null,
    settings: null,   // /console/charts.json
    frontier: null,   // /frontier
    lambda: null,     // /lambda
    policy: null,     // /policy
    preview: null,    // /frontier/preview for the knob's value
    knobTouched: false,
    previewVersion: null, // the frontier version state.preview was asked under
    timers: [],
    plots: {},        // id → {u, key}
    missing: {},      // path → true once it answered 404
  };

  // ---- HTTP ---------------------------------------------------------------

  class AuthError extends Error {}
  class HTTPError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path, opts) {
    const o = Object.assign({ cache: "no-store" }, opts || {});
    o.headers = Object.assign({ Authorization: "Bearer " + state.token }, o.headers || {});
    let resp;
    try {
      resp = await fetch(path, o);
    } catch (e) {
      throw new HTTPError(0, "admin port unreachable: " + e.message);
    }
    let body = null;
    try { body = await resp.json(); } catch (_) { /* not JSON */ }
    const msg = body && body.error && body.error.message ? body.error.message : resp.status + " " + resp.statusText;
    if (resp.status === 401) {
      logout(msg);
      throw new AuthError(msg);
    }
    if (!resp.ok) throw new HTTPError(resp.status, msg);
    return body;
  }

  // get returns null for a route this process does not serve (404), so a
  // console on an optimizer-only process shows what it has.
  async function get(path) {
    try {
      const v = await api(path);
      delete state.missing[path.split("?")[0]];
      return v;
    } catch (e) {
      if (e instanceof HTTPError && e.status === 404) {
        state.missing[path.split("?")[0]] = e.message;
        return null;
      }
      throw e;
    }
  }

  async function query(sql) {
    return api("/query?sql=" + encodeURIComponent(sql));
  }

  // ---- login --------------------------------------------------------------

  function showLogin(msg) {
    $("app").hidden = true;
    $("logout").hidden = true;
    $("login").hidden = false;
    $("login-msg").textContent = msg || "";
    $("status").textContent = "";
    $("token").value = "";
    $("token").focus();
  }

  function logout(msg) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    state.timers.forEach(clearTimeout);
    state.timers = [];
    showLogin(msg);
  }

  async function login(token) {
    state.token = token;
    try {
      state.settings = await api("/console/charts.json");
    } catch (e) {
      if (!(e instanceof AuthError)) showLogin(e.message);
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    $("login").hidden = true;
    $("app").hidden = false;
    $("logout").hidden = false;
    $("slo-note").textContent = "Requests that succeeded " + state.settings.slo_note + ".";
    loop(pollLive, state.settings.poll_ms);
    loop(pollCharts, state.settings.chart_poll_ms);
  }

  // loop runs fn now and again every ms after it finishes, until logout.
  function loop(fn, ms) {
    const tick = async () => {
      if (!state.token) return;
      try {
        await fn();
      } catch (e) {
        if (e instanceof AuthError) return;
        setStatus(e.message, true);
      }
      if (state.token) state.timers.push(setTimeout(tick, ms));
    };
    tick();
  }

  function setStatus(text, err) {
    const s = $("status");
    s.textContent = text;
    s.classList.toggle("err", !!err);
  }

  // ---- live state: frontier, λ, policy, orchestrators ----------------------

  async function pollLive() {
    const [frontier, lambda, policy, orchs] = await Promise.all([
      get("/frontier"), get("/lambda"), get("/policy"), get("/orchestrators")]);
    state.frontier = frontier;
    state.lambda = lambda;
    state.policy = policy;
    // A new frontier (a new policy) or none yet: ask for the prediction at
    // the knob again, which also carries the one at the current λ.
    if (frontier && (frontier.version !== state.previewVersion || !state.preview)) {
      state.previewVersion = frontier.version;
      const at = state.knobTouched ? knobValue() : currentLambda();
      if (at != null) loadPreview(at);
    }
    renderKnobNow();
    renderFrontier();
    renderOrchestrators(orchs, policy);
    const parts = [];
    if (policy) parts.push("policy v" + policy.version);
    if (lambda) parts.push("λ " + fmtLambda(lambda.lambda));
    parts.push("updated " + fmtTime(Date.now()));
    setStatus(parts.join(" · "), false);
  }

  function currentLambda() {
    if (state.lambda) return state.lambda.lambda;
    if (state.frontier) return state.frontier.lambda;
    return null;
  }

  function renderKnobNow() {
    const cur = currentLambda();
    $("lambda-now").textContent = cur == null ? "–" : "λ = " + fmtLambda(cur);
    const p = state.policy;
    $("policy-now").textContent = p ? "policy v" + p.version + " computed at λ = " + fmtLambda(p.lambda) : "no policy yet";
    const knob = $("knob");
    knob.disabled = cur == null;
    if (cur != null && !state.knobTouched) {
      knob.value = cur;
      $("knob-value").textContent = fmtLambda(cur);
    }
    if (!state.frontier) {
      const why = state.missing["/frontier"];
      $("frontier-note").textContent = why ? "No frontier from this process: " + why : "Waiting for the optimizer's first frontier…";
    }
    // The "now" column of the preview follows the current point.
    const now = currentPoint();
    for (const tr of $("preview").tBodies[0].rows) {
      tr.cells[1].textContent = now ? fmtMetric(tr.dataset.k, now[tr.dataset.k]) : "–";
    }
    updateApply();
  }

  // currentPoint is the prediction at the current λ: the preview's own
  // "current" when there is one, else the frontier point nearest to it.
  function currentPoint() {
    if (state.preview && state.preview.current) return state.preview.current;
    const f = state.frontier, cur = currentLambda();
    if (!f || !f.points || !f.points.length || cur == null) return null;
    let best = f.points[0];
    for (const p of f.points) if (Math.abs(p.lambda - cur) < Math.abs(best.lambda - cur)) best = p;
    return Math.abs(best.lambda - cur) < 1e-9 ? best : null;
  }

  // ---- the frontier plot -------------------------------------------------

  function renderFrontier() {
    const el = $("frontier-plot");
    const f = state.frontier;
    if (!f || !f.points || !f.points.length) {
      setEmpty("frontier", el, "no frontier yet");
      el.dataset.drawn = "";
      return;
    }
    const pts = f.points.slice().sort((a, b) => a.cost_per_request - b.cost_per_request);
    const cur = currentPoint();
    const curL = currentLambda();
    // The previewed point, unless it is the current one.
    const prev = state.preview && curL != null && Math.abs(state.preview.lambda - curL) > 1e-9 ? state.preview : null;
    // uPlot wants one sorted x array for every series: the union of the
    // frontier's costs and the two marked points', nulls elsewhere.
    const xs = Array.from(new Set(pts.map((p) => p.cost_per_request)
      .concat(cur ? [cur.cost_per_request] : [], prev ? [prev.cost_per_request] : []))).sort((a, b) => a - b);
    const at = (x) => xs.indexOf(x);
    const line = xs.map(() => null), now = xs.map(() => null), pv = xs.map(() => null);
    const lambdaAt = xs.map(() => null);
    for (const p of pts) { line[at(p.cost_per_request)] = p.slo_attainment * 100; lambdaAt[at(p.cost_per_request)] = p; }
    if (cur) now[at(cur.cost_per_request)] = cur.slo_attainment * 100;
    if (prev) pv[at(prev.cost_per_request)] = prev.slo_attainment * 100;
    const data = [xs, line, now, pv];

    const opts = {
      height: 320,
      scales: { x: { time: false }, y: { range: (u, min, max) => padRange(min, max, 100) } },
      axes: [
        // Costs of a narrow sweep have long labels: keep ticks apart.
        { label: "predicted cost per request (USD)", values: (u, vs) => vs.map((v) => fmtUSD(v)), size: 44, space: 90 },
        { label: "predicted SLO attainment", values: (u, vs) => vs.map((v) => v.toFixed(1) + " %"), size: 64 },
      ],
      series: [
        { label: "cost / request", value: (u, v) => v == null ? "–" : fmtUSD(v) },
        {
          label: "frontier (λ sweep)", stroke: "#2f6fdb", width: 2, spanGaps: true,
          points: { show: true, size: 7, fill: "#fff" },
          value: (u, v, si, i) => {
            const p = i == null ? null : lambdaAt[i];
            return p ? "λ " + fmtLambdaFine(p.lambda) + " · " + v.toFixed(1) + " % · p95 " + fmtMs(p.p95_ms) : "–";
          },
        },
        {
          label: "now" + (curL == null ? "" : " (λ " + fmtLambda(curL) + ")"), stroke: "#1d2330", width: 0,
          points: { show: true, size: 15, fill: "#1d2330", stroke: "#fff", width: 2 }, paths: () => null,
          value: (u, v) => v == null ? "–" : v.toFixed(1) + " %",
        },
        {
          label: "preview" + (prev ? " (λ " + fmtLambda(prev.lambda) + ")" : ""), stroke: "#e8590c", width: 0,
          points: { show: true, size: 15, fill: "#e8590c", stroke: "#fff", width: 2 }, paths: () => null,
          value: (u, v) => v == null ? "–" : v.toFixed(1) + " %",
        },
      ],
      hooks: {
        draw: [(u) => {
          // λ next to the frontier's points, as many as fit.
          const ctx = u.ctx;
          ctx.save();
          ctx.font = Math.round(11 * devicePixelRatio) + "px system-ui, sans-serif";
          ctx.fillStyle = "#687082";
          let lastX = -Infinity, lastY = -Infinity;
          const gap = 46 * devicePixelRatio;
          pts.forEach((p) => {
            const x = u.valToPos(p.cost_per_request, "x", true), y = u.valToPos(p.slo_attainment * 100, "y", true);
            if (Math.hypot(x - lastX, y - lastY) < gap) return; // no overlapping labels
            lastX = x; lastY = y;
            ctx.fillText("λ " + fmtLambdaFine(p.lambda), x + 7 * devicePixelRatio, y + 14 * devicePixelRatio);
          });
          ctx.restore();
        }],
      },
    };
    const key = "frontier|" + (curL == null ? "" : fmtLambda(curL)) + "|" + (prev ? prev.lambda : "");
    draw("frontier", el, opts, data, key);
    el.dataset.drawn = cur ? "current" : "frontier";
    el.dataset.preview = prev ? fmtLambda(prev.lambda) : "";
    el.dataset.version = f.version;
    $("frontier-note").textContent = "Policy v" + f.version + ": " + pts.length + " points, λ from " +
      fmtLambdaFine(pts.reduce((m, p) => Math.min(m, p.lambda), 1)) + " to " + fmtLambda(pts.reduce((m, p) => Math.max(m, p.lambda), 0)) +
      (f.computed_ms ? ", computed " + fmtTime(f.computed_ms) : "") +
      ". Hover for λ and p95; drag the knob to preview.";
  }

  function padRange(min, max, cap) {
    if (min == null || max == null) return [0, cap];
    const pad = Math.max((max - min) * 0.15, 0.5);
    return [Math.max(0, min - pad), Math.min(cap, max + pad)];
  }

  // ---- the knob and its preview --------------------------------------------

  let previewTimer = null, previewSeq = 0;

  function onKnob() {
    state.knobTouched = true;
    const v = Number($("knob").value);
    $("knob-value").textContent = fmtLambda(v);
    clearTimeout(previewTimer);
    previewTimer = setTimeout(() => loadPreview(v), 200);
    updateApply();
  }

  async function loadPreview(v) {
    const seq = ++previewSeq;
    let p;
    try {
      p = await api("/frontier/preview?lambda=" + encodeURIComponent(v));
    } catch (e) {
      if (e instanceof AuthError) return;
      $("knob-msg").textContent = "Preview unavailable: " + e.message;
      return;
    }
    if (seq !== previewSeq) return; // a newer value is on its way
    state.preview = p;
    $("knob-msg").textContent = "";
    renderPreview();
    renderFrontier();
  }

  function renderPreview() {
    const p = state.preview;
    const tbl = $("preview");
    $("preview-head").textContent = p ? "at λ " + fmtLambda(p.lambda) : "at λ";
    for (const tr of tbl.tBodies[0].rows) {
      const k = tr.dataset.k;
      tr.cells[1].textContent = p && p.current ? fmtMetric(k, p.current[k]) : "–";
      const cell = tr.cells[3];
      cell.textContent = p ? fmtMetric(k, p[k]) : "–";
    }
    tbl.dataset.lambda = p ? fmtLambda(p.lambda) : "";
    const moves = p && p.moves ? p.moves : [];
    $("moves-summary").textContent = p ? (moves.length ? moves.length + " share" + (moves.length > 1 ? "s" : "") + " would move, largest " +
      describeMove(largestMove(moves)) : "No share would move.") : "";
    updateApply();
  }

  function largestMove(moves) {
    return moves.reduce((a, m) => (!a || Math.abs(m.to - m.from) > Math.abs(a.to - a.from) ? m : a), null);
  }

  function describeMove(m) {
    return m.orchestrator + " in " + className(m) + ": " + fmtPct(m.from) + " → " + fmtPct(m.to);
  }

  function className(m) {
    return m.capability + (m.model ? "/" + m.model : "") + (m.client_region ? " @" + m.client_region : "");
  }

  function knobValue() { return Number($("knob").value); }

  function updateApply() {
    const b = $("apply");
    const cur = currentLambda();
    const v = knobValue();
    const ready = state.preview && Math.abs(state.preview.lambda - v) < 1e-9;
    b.disabled = cur == null || !ready || Math.abs(v - cur) < 1e-9;
    b.textContent = "Apply λ = " + fmtLambda(v) + "…";
  }

  function openConfirm() {
    const p = state.preview;
    if (!p) return;
    $("confirm-title").textContent = "Apply λ = " + fmtLambda(p.lambda) + " (now " + fmtLambda(currentLambda()) + ")?";
    const body = $("confirm-table").tBodies[0];
    body.replaceChildren();
    const rows = [["cost_per_request", "cost / request", -1], ["slo_attainment", "SLO attainment", 1], ["p95_ms", "p95 latency", -1]];
    for (const [k, label, better] of rows) {
      const a = p.current ? p.current[k] : null, b = p[k];
      const tr = el("tr", {}, [el("th", {}, label), el("td", {}, fmtMetric(k, a)), el("td", { class: "arrow" }, "→"),
        el("td", { class: "new" }, fmtMetric(k, b))]);
      const d = a == null || b == null ? null : b - a;
      const cls = d == null || Math.abs(d) < 1e-12 ? "" : (Math.sign(d) === better ? "better" : "worse");
      tr.append(el("td", { class: cls }, d == null ? "" : fmtDelta(k, d, a)));
      body.append(tr);
    }
    const moves = (p.moves || []).slice().sort((x, y) => Math.abs(y.to - y.from) - Math.abs(x.to - x.from));
    $("confirm-moves-title").textContent = moves.length ? "Shares that would move (" + moves.length + ")" : "No share would move";
    fillTable($("confirm-moves"), ["class", "orchestrator", "from", "to"],
      moves.map((m) => [className(m), m.orchestrator, fmtPct(m.from), fmtPct(m.to)]), { num: [2, 3] });
    $("confirm-msg").textContent = "";
    $("confirm-apply").disabled = false;
    $("confirm").showModal();
  }

  async function applyLambda() {
    const v = state.preview.lambda;
    $("confirm-apply").disabled = true;
    try {
      const r = await api("/lambda?lambda=" + encodeURIComponent(v), { method: "POST" });
      $("confirm").close();
      state.knobTouched = false;
      state.lambda = r;
      $("knob-msg").textContent = "λ set to " + fmtLambda(r.lambda) + " at " + fmtTime(Date.now()) +
        "; the next policy carries it.";
      $("knob-msg").dataset.applied = fmtLambda(r.lambda);
      renderKnobNow();
      loadPreview(r.lambda);
      pollCharts().catch(() => {}); // the audit row is there now
    } catch (e) {
      if (e instanceof AuthError) return;
      $("confirm-msg").textContent = "Not applied: " + e.message;
      $("confirm-apply").disabled = false;
    }
  }

  // ---- orchestrators -------------------------------------------------------

  function renderOrchestrators(orchs, policy) {
    const t = $("orchs");
    if (!orchs) {
      fillTable(t, ["orchestrator"], [], { empty: "not served by this process" });
      return;
    }
    const limits = {}, ejections = {};
    for (const l of (policy && policy.limits) || []) limits[l.orchestrator] = l.max_in_flight;
    for (const e of (policy && policy.ejections) || []) ejections[e.orchestrator] = e;
    const rows = orchs.map((o) => {
      const shares = o.classes.filter((c) => c.share != null).map((c) => c.share);
      const share = shares.length ? shares.reduce((a, b) => a + b, 0) / shares.length : null;
      let st = "ok", why = "";
      if (o.policy_ejected) {
        st = "ejected by policy";
        why = (o.policy_eject_reason || (ejections[o.id] || {}).reason || "") + (o.policy_ejected_until ? " (until " + fmtTime(o.policy_ejected_until) + ")" : "");
      } else if (o.ejected) {
        st = "ejected by router";
        why = o.consecutive_failures + " consecutive failures (until " + fmtTime(o.ejected_until) + ")";
      }
      return {
        bad: st !== "ok",
        cells: [o.id, o.region || "", fmtPct(share), String(o.in_flight), o.max_in_flight ? String(o.max_in_flight) : "–",
          limits[o.id] ? String(limits[o.id]) : "–", o.latency_ms ? fmtMs(o.latency_ms) : "–", tag(st), why],
      };
    });
    fillTable(t, ["orchestrator", "region", "share", "in flight", "limit", "policy limit", "latency", "state", "reason"],
      rows, { num: [2, 3, 4, 5, 6], reason: [8] });
  }

  function tag(st) {
    return el("span", { class: "tag " + (st === "ok" ? "ok" : "bad") }, st);
  }

  // ---- SQL charts and tables -----------------------------------------------

  async function pollCharts() {
    const s = await api("/console/charts.json");
    state.settings = s;
    await Promise.all(s.charts.map(async (c) => {
      let r;
      try {
        r = await query(c.sql);
      } catch (e) {
        if (e instanceof AuthError) throw e;
        r = { error: e.status === 404 ? "no /query on this process" : e.message };
      }
      if (c.kind === "series") renderSeries(c, r, s);
      else renderTable(c, r);
    }));
  }

  // renderSeries draws long rows (time, label, value) as one line per label.
  function renderSeries(c, r, s) {
    const target = $("chart-" + c.id);
    if (!target) return;
    if (r.error || !r.rows.length) {
      setEmpty(c.id, target, r.error || "no data in the last " + Math.round((s.to_ms - s.from_ms) / 60000) + " min");
      return;
    }
    const times = [], labels = [], byKey = new Map();
    for (const row of r.rows) {
      const t = Date.parse(row[0]) / 1000, lab = String(row[1]), v = row[2] == null ? null : Number(row[2]);
      if (!byKey.has(t)) { byKey.set(t, {}); times.push(t); }
      if (!labels.includes(lab)) labels.push(lab);
      byKey.get(t)[lab] = v;
    }
    times.sort((a, b) => a - b);
    labels.sort();
    const scale = c.unit === "usd" ? 1 : 100;
    const data = [times].concat(labels.map((l) => times.map((t) => {
      const v = byKey.get(t)[l];
      return v == null || !isFinite(v) ? null : v * scale;
    })));
    const fmt = c.unit === "usd" ? fmtUSD : (v) => v.toFixed(c.unit === "share" ? 0 : 1) + " %";
    const opts = {
      height: 200,
      scales: {
        // The whole window, so one minute of data sits where it belongs.
        // The window, from the first data on (at least 3 minutes), so the
        // first minutes of a new process are not squeezed to one edge.
        x: { time: true, range: (u) => {
          const to = state.settings.to_ms / 1000, from = state.settings.from_ms / 1000;
          const first = u.data[0].length ? u.data[0][0] : to;
          return [Math.max(from, Math.floor(Math.min(first, to - 180) / 60) * 60), to];
        } },
        y: c.unit === "usd" ? { range: (u, min, max) => [0, max * 1.15 || 1e-6] } : { range: (u, min, max) => [Math.max(0, Math.min(min, 100) - 5), Math.min(100, max + 5)] },
      },
      axes: [{ values: (u, vs) => vs.map((v) => fmtClock(v)) }, { values: (u, vs) => vs.map(fmt), size: c.unit === "usd" ? 78 : 62 }],
      series: [{ label: "time", value: (u, v) => v == null ? "–" : fmtTime(v * 1000) }].concat(labels.map((l, i) => ({
        label: l, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: true,
        // A share holds from one policy to the next: steps, not slopes.
        paths: c.unit === "share" ? uPlot.paths.stepped({ align: 1 }) : undefined,
        // Points only while there are too few to draw a line (the plot is
        // kept across refreshes, so this is asked at every draw).
        points: { show: (u) => u.data[0].length < 4, size: 6 }, value: (u, v) => v == null ? "–" : fmt(v),
      }))),
      legend: { show: true },
    };
    draw(c.id, target, opts, data, c.id + "|" + labels.join("|"));
    target.dataset.points = String(times.length);
  }

  // Table columns worth shaping; the rest are shown as they come.
  const TIME_COLS = new Set(["time", "first_seen", "last_seen", "until"]);
  const PCT_COLS = new Set(["before", "after", "change"]);
  const REASON_COLS = new Set(["reason", "ejected", "detail"]);
  const HEADINGS = { lambda: "λ", first_seen: "first seen", last_seen: "last seen", ejected: "ejected (reason)", detail: "old → new" };

  function renderTable(c, r) {
    const t = $("table-" + c.id);
    if (!t) return;
    if (r.error) {
      fillTable(t, ["–"], [], { empty: r.error });
      return;
    }
    const cols = r.columns;
    const num = [], reason = [];
    cols.forEach((n, i) => {
      if (REASON_COLS.has(n)) reason.push(i);
      else if (!TIME_COLS.has(n) && r.rows.some((row) => typeof row[i] === "number")) num.push(i);
    });
    const rows = r.rows.map((row) => row.map((v, i) => {
      const n = cols[i];
      if (v == null) return "";
      if (TIME_COLS.has(n)) return fmtTime(v);
      if (PCT_COLS.has(n)) return (n === "change" && v > 0 ? "+" : "") + fmtPct(v);
      if (n === "lambda") return fmtLambda(v);
      if (n === "detail") return fmtDetail(v);
      if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(4);
      return String(v);
    }));
    fillTable(t, cols, rows, { num: num, reason: reason, empty: c.empty || "none" });
    t.dataset.rows = String(rows.length);
  }

  // fmtDetail shows an audit detail {"old":…, "new":…} as old → new.
  function fmtDetail(s) {
    try {
      const d = JSON.parse(s);
      if (d && "old" in d && "new" in d) return JSON.stringify(d.old) + " → " + JSON.stringify(d.new);
    } catch (_) { /* shown as is */ }
    return String(s);
  }

  // ---- drawing helpers -----------------------------------------------------

  // draw creates the uPlot for id, or gives it new data when its series
  // (key) did not change.
  function draw(id, target, opts, data, key) {
    const w = Math.max(200, target.clientWidth);
    const have = state.plots[id];
    if (have && have.key === key) {
      have.u.setData(data);
      return;
    }
    if (have) have.u.destroy();
    target.replaceChildren();
    const u = new uPlot(Object.assign({ width: w }, opts), data, target);
    state.plots[id] = { u: u, key: key };
  }

  function setEmpty(id, target, msg) {
    const have = state.plots[id];
    if (have) { have.u.destroy(); delete state.plots[id]; }
    target.replaceChildren(el("div", { class: "empty" }, msg));
  }

  function resizePlots() {
    for (const id in state.plots) {
      const p = state.plots[id];
      const w = p.u.root.parentElement.clientWidth;
      if (w > 0) p.u.setSize({ width: w, height: p.u.height });
    }
  }

  // el makes an element with attributes and text or child nodes.
  function el(tag, attrs, content) {
    const e = document.createElement(tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (Array.isArray(content)) e.append(...content);
    else if (content instanceof Node) e.append(content);
    else if (content != null) e.textContent = content;
    return e;
  }

  // fillTable writes a header and rows (arrays of text or nodes, or
  // {cells, bad}); opts.num and opts.reason are column indexes.
  function fillTable(t, cols, rows, opts) {
    opts = opts || {};
    const num = new Set(opts.num || []), reason = new Set(opts.reason || []);
    const head = el("thead", {}, [el("tr", {}, cols.map((c) => el("th", {}, HEADINGS[c] || c)))]);
    const body = el("tbody", {}, []);
    if (!rows.length) {
      body.append(el("tr", {}, [el("td", { class: "empty", colspan: String(cols.length) }, opts.empty || "none")]));
    }
    for (const row of rows) {
      const cells = Array.isArray(row) ? row : row.cells;
      const tr = el("tr", row.bad ? { class: "bad" } : {}, cells.map((v, i) =>
        el("td", num.has(i) ? { class: "num" } : reason.has(i) ? { class: "reason" } : {}, v)));
      body.append(tr);
    }
    t.replaceChildren(head, body);
  }

  // ---- formatting ----------------------------------------------------------

  function fmtLambda(v) { return v == null ? "–" : Number(v).toFixed(2); }
  // fmtLambdaFine keeps the small λ of a log-spaced sweep apart.
  function fmtLambdaFine(v) { return v > 0 && v < 0.01 ? Number(v).toFixed(3) : fmtLambda(v); }
  function fmtPct(v) { return v == null || !isFinite(v) ? "–" : (v * 100).toFixed(1) + " %"; }
  function fmtMs(v) {
    if (v == null || !isFinite(v)) return "–";
    return v >= 10000 ? (v / 1000).toFixed(1) + " s" : Math.round(v).toLocaleString("en-US") + " ms";
  }
  function fmtUSD(v) {
    if (v == null || !isFinite(v)) return "–";
    const a = Math.abs(v);
    return "$" + (a >= 1 ? v.toFixed(2) : a >= 0.01 ? v.toFixed(4) : a === 0 ? "0" : v.toPrecision(3));
  }
  function fmtMetric(k, v) {
    if (v == null) return "–";
    if (k === "cost_per_request") return fmtUSD(v);
    if (k === "slo_attainment") return fmtPct(v);
    return fmtMs(v);
  }
  function fmtDelta(k, d, base) {
    const sign = d > 0 ? "+" : "−";
    const a = Math.abs(d);
    if (k === "slo_attainment") return sign + (a * 100).toFixed(1) + " pt";
    const rel = base ? " (" + sign + (a / Math.abs(base) * 100).toFixed(0) + " %)" : "";
    return sign + (k === "cost_per_request" ? fmtUSD(a) : fmtMs(a)) + rel;
  }
  // fmtClock is an axis tick: HH:MM, with seconds when not on the minute.
  function fmtClock(sec) {
    const t = new Date(sec * 1000), pad = (n) => String(n).padStart(2, "0");
    return pad(t.getHours()) + ":" + pad(t.getMinutes()) + (t.getSeconds() ? ":" + pad(t.getSeconds()) : "");
  }
  function fmtTime(v) {
    const t = typeof v === "number" ? new Date(v) : new Date(String(v));
    if (isNaN(t)) return String(v);
    if (t.getUTCFullYear() > 9000) return "–"; // "never" (far future)
    const pad = (n) => String(n).padStart(2, "0");
    const hms = pad(t.getHours()) + ":" + pad(t.getMinutes()) + ":" + pad(t.getSeconds());
    if (new Date().toDateString() === t.toDateString()) return hms;
    return t.getFullYear() + "-" + pad(t.getMonth() + 1) + "-" + pad(t.getDate()) + " " + hms;
  }

  // ---- start ---------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const tok = $("token").value.trim();
      if (tok) login(tok);
    });
    $("logout").addEventListener("click", () => logout("Logged out."));
    $("knob").addEventListener("input", onKnob);
    $("apply").addEventListener("click", openConfirm);
    $("confirm-apply").addEventListener("click", applyLambda);
    window.addEventListener("resize", () => requestAnimationFrame(resizePlots));
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) login(saved);
    else showLogin("");
  });
})();
