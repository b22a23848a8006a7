// ccmux dashboard: reads /api/dashboard, /api/requests, /api/stats and
// /api/usage/history every few seconds and renders them. Every value is
// written with textContent, never as HTML. The page's POSTs carry the
// per-process token from the page's <meta name="ccmux-csrf">.
"use strict";

(function () {
  const csrf = document.querySelector('meta[name="ccmux-csrf"]').content;
  const pollMs = 4000;
  const pageSize = 25;
  let before = 0; // 0: the newest page of requests
  const pages = []; // the "before" of each page shown before this one
  const charts = new Map(); // login → uPlot
  let dailyChart = null;

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("data-")) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children) {
      if (c == null) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  async function getJSON(path) {
    // The token stands in for server.api_key when one is set.
    const resp = await fetch(path, { credentials: "same-origin", cache: "no-store", headers: { "X-Ccmux-Csrf": csrf } });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error((body.error && body.error.message) || resp.status + " " + resp.statusText);
    return body;
  }

  async function post(path, body) {
    const resp = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Ccmux-Csrf": csrf },
      body: JSON.stringify(body),
    });
    const out = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error((out.error && out.error.message) || resp.status + " " + resp.statusText);
    return out;
  }

  const num = new Intl.NumberFormat();
  const usd = new Intl.NumberFormat(undefined, { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2 });

  function dollars(v) { return v > 0 && v < 0.005 ? "< $0.01" : usd.format(v); }
  function tokens(n) { return n == null ? "—" : num.format(n); }
  function ms(n) { return n == null ? "—" : n < 1000 ? n + " ms" : (n / 1000).toFixed(1) + " s"; }
  function when(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }
  function timeOf(iso) {
    const d = new Date(iso);
    return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }
  function until(iso) {
    const s = (new Date(iso) - Date.now()) / 1000;
    if (s <= 0) return "now";
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    if (h >= 48) return "in " + Math.round(h / 24) + " days";
    return "in " + (h ? h + " h " : "") + m + " min";
  }
  const windowNames = { five_hour: "5-hour", seven_day: "Weekly", seven_day_opus: "Weekly Opus", seven_day_sonnet: "Weekly Sonnet" };
  function windowName(n) { return windowNames[n] || n.replace(/_/g, " "); }

  function setMessage(text, isError) {
    const m = document.getElementById("action-message");
    m.textContent = text;
    m.className = isError ? "err" : "muted";
  }

  // Logins.
  function loginCard(l) {
    const card = el("div", { class: "card login", "data-provider": l.provider });
    let badge;
    if (!l.enabled) badge = el("span", { class: "badge" }, "disabled");
    else if (l.limited_until) badge = el("span", { class: "badge bad" }, "limit reached");
    else if (l.signed_in) badge = el("span", { class: "badge ok" }, l.kind === "api_key" ? "API key" : "signed in");
    else badge = el("span", { class: "badge warn" }, l.kind === "api_key" ? "no key" : "signed out");
    card.append(el("h3", {}, el("span", {}, l.provider), badge));
    const kind = { subscription: "Claude subscription", console: "Claude Console key", api_key: "API key" }[l.kind] || l.kind;
    card.append(el("div", { class: "muted" }, kind + (l.login ? " · " + l.login : "")));
    if (l.email) card.append(el("div", { class: "account" }, l.email));
    if (l.expires_at && l.signed_in) card.append(el("div", { class: "muted" }, (l.expired ? "token expired " : "token expires ") + when(l.expires_at)));
    if (l.problem) card.append(el("div", { class: "err" }, l.problem));
    if (l.limited_until) card.append(el("p", { class: "limit" }, "Limit reached until " + when(l.limited_until)));
    for (const w of l.windows || []) {
      const pct = Math.round(w.utilization * 100);
      const fill = el("div", { class: "fill" + (pct >= 100 ? " bad" : pct >= 90 ? " warn" : "") });
      fill.style.width = Math.min(pct, 100) + "%";
      const resets = w.resets_at ? "resets " + until(w.resets_at) + " (" + when(w.resets_at) + ")" : "";
      card.append(el("div", { class: "window", "data-window": w.name },
        el("div", { class: "label" }, el("span", {}, windowName(w.name) + " "), el("span", { class: "pct" }, pct + "%")),
        el("div", { class: "track" }, fill),
        el("div", { class: "muted" }, resets)));
    }
    if (l.kind !== "api_key") {
      const actions = el("div", { class: "actions" });
      if (l.signed_in) {
        const b = el("button", { type: "button", class: "signout", "data-login": l.login }, "Sign out");
        b.addEventListener("click", () => act("signout", l.login, b));
        actions.append(b);
      } else if (state && state.can_sign_in) {
        const b = el("button", { type: "button", class: "signin", "data-login": l.login }, "Sign in");
        b.addEventListener("click", () => act("signin", l.login, b));
        actions.append(b);
      } else {
        actions.append(el("span", { class: "muted" }, "Sign in with ccmux login or the tray"));
      }
      card.append(actions);
    }
    return card;
  }

  async function act(what, login, button) {
    button.disabled = true;
    try {
      const out = await post("/api/dashboard/" + what, { provider_id: login });
      setMessage(what === "signin" ? (out.message || "Finish signing in in the browser.") : "Signed out of " + login + ".", false);
    } catch (e) {
      setMessage(e.message, true);
    }
    refresh();
  }

  let state = null;

  function renderState(s) {
    state = s;
    const proxy = document.getElementById("proxy");
    proxy.textContent = (s.running ? "proxy on " : "proxy off, ") + s.address + " · ccmux " + s.version;
    const logins = document.getElementById("logins");
    logins.replaceChildren(...s.logins.map(loginCard));
    if (!s.logins.length) logins.append(el("p", { class: "muted" }, "No providers in the config."));
    const dl = document.getElementById("state");
    const rows = [
      ["Proxy", (s.running ? "running on " : "stopped; configured for ") + s.address],
      ["Base URL", s.base_url],
      ["Config file", s.config_path || "built-in default"],
      ["Last reload", s.last_reload ? when(s.last_reload.time) + ": " + (s.last_reload.error ? "not applied: " + s.last_reload.error : s.last_reload.summary || "applied") : "none since start"],
      ["History", s.history ? s.history_path + (s.dropped ? " (" + num.format(s.dropped) + " records dropped: the queue was full)" : "") : "off: the database could not be opened (see the log)"],
      ["Prices", "API list prices of " + s.prices_date + ", overridable in [dashboard.prices]"],
    ];
    dl.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-key": k }, v)]));
  }

  // Requests.
  function renderRequests(list) {
    const tbody = document.querySelector("#requests tbody");
    tbody.replaceChildren(...list.map((r) => el("tr", { "data-id": r.id },
      el("td", {}, timeOf(r.time)),
      el("td", { class: "model" }, r.model),
      el("td", {}, r.provider),
      el("td", {}, r.model_sent),
      el("td", {}, r.failover || ""),
      el("td", { class: r.status >= 400 ? "err" : "" }, r.status),
      el("td", { class: "num" }, ms(r.ttfb_ms)),
      el("td", { class: "num" }, ms(r.duration_ms)),
      el("td", { class: "num input" }, tokens(r.input_tokens)),
      el("td", { class: "num output" }, tokens(r.output_tokens)),
      el("td", { class: "num" }, tokens(r.cache_read_input_tokens)),
      el("td", { class: "num" }, tokens(r.cache_creation_input_tokens)))));
    if (!list.length) tbody.append(el("tr", {}, el("td", { colSpan: 12, class: "muted" }, "No requests recorded yet.")));
    const older = document.getElementById("older");
    older.disabled = list.length < pageSize;
    older.onclick = () => { pages.push(before); before = list[list.length - 1].id; loadRequests(); };
    const newer = document.getElementById("newer");
    newer.disabled = before === 0;
    newer.onclick = () => { before = 0; pages.length = 0; loadRequests(); };
  }

  async function loadRequests() {
    const q = "/api/requests?limit=" + pageSize + (before ? "&before=" + before : "");
    renderRequests((await getJSON(q)).requests);
  }

  // Totals per day and model.
  function renderStats(s) {
    const tbody = document.querySelector("#stats tbody");
    const rows = s.stats.slice().reverse(); // newest day first
    tbody.replaceChildren(...rows.map((d) => el("tr", { "data-model": d.model },
      el("td", {}, d.day),
      el("td", {}, d.model),
      el("td", { class: "num" }, num.format(d.requests)),
      el("td", { class: "num" }, tokens(d.input_tokens)),
      el("td", { class: "num" }, tokens(d.output_tokens)),
      el("td", { class: "num" }, tokens(d.cache_read_input_tokens)),
      el("td", { class: "num" }, tokens(d.cache_creation_input_tokens)),
      el("td", { class: "num cost" + (d.api_cost_usd == null ? " muted" : "") }, d.api_cost_usd == null ? "no price" : dollars(d.api_cost_usd)))));
    if (!rows.length) tbody.append(el("tr", {}, el("td", { colSpan: 8, class: "muted" }, "No requests in the last 30 days.")));
    // Totals per model over the whole period, most requests first.
    const models = new Map();
    for (const d of s.stats) {
      const m = models.get(d.model) || { model: d.model, requests: 0, input_tokens: 0, output_tokens: 0, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, api_cost_usd: 0, priced: true };
      m.requests += d.requests;
      m.input_tokens += d.input_tokens;
      m.output_tokens += d.output_tokens;
      m.cache_read_input_tokens += d.cache_read_input_tokens;
      m.cache_creation_input_tokens += d.cache_creation_input_tokens;
      if (d.api_cost_usd == null) m.priced = false; else m.api_cost_usd += d.api_cost_usd;
      models.set(d.model, m);
    }
    const mbody = document.querySelector("#models tbody");
    mbody.replaceChildren(...[...models.values()].sort((a, b) => b.requests - a.requests).map((m) => el("tr", { "data-model": m.model },
      el("td", {}, m.model),
      el("td", { class: "num" }, num.format(m.requests)),
      el("td", { class: "num" }, tokens(m.input_tokens)),
      el("td", { class: "num" }, tokens(m.output_tokens)),
      el("td", { class: "num" }, tokens(m.cache_read_input_tokens)),
      el("td", { class: "num" }, tokens(m.cache_creation_input_tokens)),
      el("td", { class: "num cost" + (m.priced ? "" : " muted") }, m.priced ? dollars(m.api_cost_usd) : "no price"))));
    const reqs = s.stats.reduce((a, d) => a + d.requests, 0);
    let text = num.format(reqs) + " requests; " + usd.format(s.total_api_cost_usd) + " at API list prices (" + s.prices_date + ")";
    if (s.unpriced_rows) text += "; some models have no price and are not counted";
    document.getElementById("spend").textContent = text;
    renderDailyChart(s.stats);
  }

  // lastDays is the x range, in Unix seconds, of the last n days up to the
  // end of today.
  function lastDays(n) {
    const end = new Date();
    end.setHours(24, 0, 0, 0);
    return [end.getTime() / 1000 - n * 86400, end.getTime() / 1000];
  }

  function width(container) { return Math.max(320, Math.min(container.clientWidth || 900, 1100) - 20); }

  function renderDailyChart(stats) {
    if (!window.uPlot) return;
    const days = [...new Set(stats.map((d) => d.day))].sort();
    const box = document.getElementById("daily-chart");
    if (!days.length) { box.replaceChildren(); dailyChart = null; return; }
    const xs = days.map((d) => Date.parse(d + "T12:00:00") / 1000);
    const cost = days.map((day) => stats.filter((d) => d.day === day).reduce((a, d) => a + (d.api_cost_usd || 0), 0));
    const reqs = days.map((day) => stats.filter((d) => d.day === day).reduce((a, d) => a + d.requests, 0));
    const data = [xs, cost, reqs];
    if (dailyChart) { dailyChart.setData(data); return; }
    const wrap = el("div", { class: "chart" }, el("h3", {}, "Per day: cost at API prices and requests"));
    box.replaceChildren(wrap);
    dailyChart = new uPlot({
      width: width(box), height: 200,
      // The whole window, whatever days have data: uPlot's own range for
      // one day of data spans years.
      scales: { x: { time: true, range: () => lastDays(30) } },
      series: [{}, { label: "USD", stroke: "#4b6bfb", fill: "rgba(75,107,251,.15)", scale: "usd", value: (u, v) => v == null ? "—" : usd.format(v) },
        { label: "requests", stroke: "#c77700", scale: "n" }],
      axes: [{}, { scale: "usd", values: (u, vals) => vals.map((v) => "$" + v) }, { scale: "n", side: 1, grid: { show: false } }],
    }, data, wrap);
  }

  // Usage windows over 7 days: one chart per login, one line per window.
  function renderUsage(u) {
    const box = document.getElementById("usage-charts");
    if (!window.uPlot) return;
    if (!u.series.length) { box.replaceChildren(el("p", { class: "muted" }, "No usage samples yet.")); charts.clear(); return; }
    const byLogin = new Map();
    for (const s of u.series) {
      if (!byLogin.has(s.login)) byLogin.set(s.login, []);
      byLogin.get(s.login).push(s);
    }
    if (charts.size && [...charts.keys()].join() !== [...byLogin.keys()].join()) { box.replaceChildren(); charts.clear(); }
    if (!charts.size) box.replaceChildren();
    const colors = ["#4b6bfb", "#c77700", "#2e7d32", "#c62828", "#8e24aa"];
    for (const [login, series] of byLogin) {
      // One x axis: every sample time of the login, each series filled where it has a point.
      const times = [...new Set(series.flatMap((s) => s.points.map((p) => Date.parse(p.time) / 1000)))].sort((a, b) => a - b);
      const idx = new Map(times.map((t, i) => [t, i]));
      const ys = series.map((s) => {
        const y = new Array(times.length).fill(null);
        for (const p of s.points) y[idx.get(Date.parse(p.time) / 1000)] = Math.round(p.utilization * 1000) / 10;
        return y;
      });
      const data = [times, ...ys];
      const old = charts.get(login);
      if (old && old.series.length === series.length + 1) { old.setData(data); continue; }
      if (old) old.destroy();
      const wrap = el("div", { class: "chart", "data-login": login }, el("h3", {}, login));
      box.append(wrap);
      charts.set(login, new uPlot({
        width: width(box), height: 200,
        scales: { x: { time: true, range: () => lastDays(7) }, y: { range: [0, 100] } },
        series: [{}, ...series.map((s, i) => ({ label: windowName(s.window), stroke: colors[i % colors.length], spanGaps: true, value: (u, v) => v == null ? "—" : v + "%" }))],
        axes: [{}, { values: (u, vals) => vals.map((v) => v + "%") }],
      }, data, wrap));
    }
  }

  let busy = false;
  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const [s, stats, usage] = await Promise.all([getJSON("/api/dashboard"), getJSON("/api/stats?days=30").catch(() => null), getJSON("/api/usage/history?days=7").catch(() => null)]);
      renderState(s);
      await loadRequests().catch(() => renderRequests([]));
      if (stats) renderStats(stats);
      if (usage) renderUsage(usage);
      document.body.dataset.loaded = "1";
    } catch (e) {
      document.getElementById("proxy").textContent = "ccmux does not answer: " + e.message;
    } finally {
      busy = false;
    }
  }

  refresh();
  setInterval(refresh, pollMs);
})();
