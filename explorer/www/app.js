// sfr2l explorer: the page's glue. Every number comes from the wasm module (sfr2l-runtime/tract
// on the served ONNX files); this file fetches, draws and writes the results into the DOM (ids
// out-*, data-* on <body>) so that a headless browser test can read them.
import init, { Simulator, Agents } from "/pkg/sfr2l_explorer.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = { sim: null, info: null, agents: [], rows: [], values: [], name: null };

function setStatus(text, kind) {
  $("status").textContent = text;
  if (kind) document.body.dataset.state = kind;
}
function fail(where, e) {
  const msg = `${where}: ${e && e.message ? e.message : e}`;
  setStatus(`error: ${msg}`, "error");
  document.body.dataset.error = msg;
  console.error(msg);
}
window.addEventListener("error", (ev) => fail("page", ev.message));
window.addEventListener("unhandledrejection", (ev) => fail("page", ev.reason));

async function fetchOk(url, kind) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status} ${await r.text()}`);
  return kind === "bytes" ? new Uint8Array(await r.arrayBuffer()) : r.text();
}

// ---- models -------------------------------------------------------------------------------
async function loadListing() {
  const listing = JSON.parse(await fetchOk("/policies/index.json"));
  const sel = $("sim-select");
  sel.innerHTML = "";
  for (const s of listing.simulators) {
    const o = document.createElement("option");
    o.value = s.name;
    o.textContent = `${s.name} (${s.agents.length} agent sets${s.card ? "" : ", NO CARD"})`;
    sel.appendChild(o);
  }
  if (!listing.simulators.length) throw new Error("no simulators under the policies folder");
  state.listing = listing;
  sel.value = params.get("sim") || listing.simulators[0].name;
  sel.onchange = () => selectSim(sel.value).catch((e) => fail(sel.value, e));
  await selectSim(sel.value);
}

async function selectSim(name) {
  setStatus(`loading simulator ${name}…`, "loading");
  const entry = state.listing.simulators.find((s) => s.name === name);
  if (!entry) throw new Error(`no simulator ${name} under policies/`);
  if (!entry.card) throw new Error(`policies/${name}/simulator.json: missing (the card is needed for ranges and checks)`);
  const [onnx, cardText] = await Promise.all([
    fetchOk(`/policies/${name}/simulator.onnx`, "bytes"),
    fetchOk(`/policies/${name}/simulator.json`),
  ]);
  const t0 = performance.now();
  state.sim = new Simulator(onnx, cardText, JSON.stringify(entry.grids ?? null));
  document.body.dataset.loadMs = (performance.now() - t0).toFixed(0);
  state.info = JSON.parse(state.sim.info());
  // The study names what fails (503 for the paper's; its failureCodes otherwise).
  const codes = state.info.failure_codes.join(",");
  $("lbl-rate").textContent = state.info.rate_label;
  $("lbl-reward").textContent = `reward (QPS × P(${codes}), eq. 3)`;
  $("lbl-unc").textContent = `ensemble spread (QPS, ${state.info.rate_label})`;
  state.name = name;
  const card = JSON.parse(cardText);
  const m = card.metrics && card.metrics.mlp_ensemble;
  $("card").innerHTML = `profile <b>${card.profile}</b>, ensemble of ${card.ensemble}, ` +
    `dataset ${card.dataset.path} (${card.dataset.rows} rows)` +
    (m ? `, test R² ${m.r2.map((x) => x.toFixed(2)).join(" / ")} (QPS / ${state.info.rate_label})` : "") +
    `<br>onnx sha256 ${card.onnx_sha256.slice(0, 12)}…, commit ${card.git_commit}`;
  buildInputs();
  await Promise.all([loadAgents(entry), loadRows(card.dataset.path)]);
  update();
}

async function loadAgents(entry) {
  state.agents = [];
  const ul = $("agents");
  ul.innerHTML = "";
  for (const a of entry.agents) {
    const li = document.createElement("li");
    li.textContent = `${a.configuration} / ${a.seed}: ${a.agents.join(" + ")}`;
    ul.appendChild(li);
    try {
      const set = new Agents(state.info.profile, a.configuration);
      for (const k of a.agents) {
        const [onnx, card] = await Promise.all([
          fetchOk(`/policies/${a.path}/${k}.onnx`, "bytes"),
          fetchOk(`/policies/${a.path}/${k}.json`),
        ]);
        set.add(k, onnx, card);
      }
      state.agents.push({ label: `${a.configuration}/${a.seed}`, set });
    } catch (e) {
      li.innerHTML += ` <span class="warn">rejected: ${e.message || e}</span>`;
    }
  }
}

async function loadRows(path) {
  state.rows = [];
  const file = path.split("/").pop();
  const r = await fetch(`/data/${file}`);
  if (!r.ok) return; // the map then says no dataset rows are served
  const lines = (await r.text()).trim().split("\n");
  const head = lines.shift().split(",");
  const col = (n) => head.indexOf(n);
  const names = state.info.features.map((f) => f.name);
  const idx = names.map(col);
  const [q, rc] = [col("qps"), col(state.info.rate)];
  if (idx.some((i) => i < 0) || q < 0 || rc < 0) return;
  for (const l of lines) {
    const f = l.split(",");
    state.rows.push({ x: idx.map((i) => Number(f[i])), qps: Number(f[q]), rate: Number(f[rc]) });
  }
}

// ---- inputs -------------------------------------------------------------------------------
/// How many rule inputs the simulator takes (its study's; threads and calls follow them).
const nRules = () => state.info.features.length - 2;

function buildInputs() {
  const div = $("inputs");
  div.innerHTML = "";
  const given = (params.get("f") || "").split(",").filter((s) => s !== "");
  state.info.features.forEach((f, i) => {
    const row = document.createElement("div");
    row.className = "row";
    row.id = `row-${f.name}`;
    const mid = f.lo === f.hi ? f.lo : Math.round((f.lo + f.hi) / 2);
    const v = given.length === state.info.features.length ? given[i] : String(mid);
    const pad = Math.max(1, Math.round((f.hi - f.lo) * 0.5));
    row.innerHTML = `<label for="in-${f.name}" title="${f.unit}">${f.name}</label>` +
      `<input type="range" min="${Math.max(0, f.lo - pad)}" max="${f.hi + pad}" step="1" value="${v}">` +
      `<input type="number" id="in-${f.name}" value="${v}">`;
    const [range, num] = row.querySelectorAll("input");
    range.oninput = () => { num.value = range.value; update(); };
    num.oninput = () => { range.value = num.value; update(); };
    div.appendChild(row);
  });
}

/// The simulator's input values (its study's rules, then threads and calls), or an error naming
/// the field that is not a number.
function readValues() {
  const out = [];
  for (const f of state.info.features) {
    const el = $(`in-${f.name}`);
    const text = el.value.trim();
    const v = text === "" ? NaN : Number(text);
    el.parentElement.classList.toggle("bad", !Number.isFinite(v));
    if (!Number.isFinite(v)) throw new Error(`${f.name}: \`${el.value}\` is not a number`);
    el.parentElement.classList.toggle("extrapolated", v < f.lo || v > f.hi);
    out.push(v);
  }
  return out;
}

// ---- computing ----------------------------------------------------------------------------
function update() {
  try {
    const v = readValues();
    state.values = v;
    const p = JSON.parse(state.sim.predict(Float64Array.from(v)));
    $("out-qps").textContent = p.qps.toFixed(3);
    $("out-rate").textContent = p.rate.toFixed(4);
    $("out-reward").textContent = p.reward.toFixed(3);
    $("out-unc").textContent = `${p.uncertainty[0].toFixed(3)}, ${p.uncertainty[1].toFixed(4)}`;
    $("out-extra").textContent = p.extrapolation.length ? p.extrapolation.join("; ") : "none (inside the card's ranges)";
    $("out-extra").className = p.extrapolation.length ? "warn" : "";
    $("out-cli").textContent = p.cli;
    const map = JSON.parse(state.sim.heatmap(Float64Array.from(v.slice(0, nRules()))));
    const choices = state.agents.map((a) => {
      try {
        return { label: a.label, ...JSON.parse(a.set.decide(Float64Array.from(v.slice(0, nRules())), v[nRules()], v[nRules() + 1])) };
      } catch (e) {
        return { label: a.label, error: e.message || String(e) };
      }
    });
    drawMap(map, choices, nearRows(v));
    document.body.dataset.optimum = `${map.optimum.threads},${map.optimum.calls}`;
    delete document.body.dataset.error;
    const ms = Number(document.body.dataset.loadMs);
    setStatus(`${state.name}: ready${ms > 0 ? ` (simulator checked and optimised in ${ms} ms)` : ""}`, "ready");
  } catch (e) {
    fail("inputs", e);
  }
}

/// Dataset rows whose rule inputs lie within 20% of each varying rule's range of the chosen ones.
function nearRows(v) {
  const fs = state.info.features.slice(0, nRules());
  return state.rows.filter((r) => fs.every((f, i) => {
    const w = f.hi - f.lo;
    return w === 0 ? r.x[i] === v[i] : Math.abs(r.x[i] - v[i]) <= 0.2 * w + 1e-9;
  }));
}

function color(t) {
  // dark blue -> teal -> yellow
  const stops = [[33, 24, 84], [33, 145, 140], [253, 231, 37]];
  const s = Math.min(1, Math.max(0, t)) * 2, i = Math.min(1, Math.floor(s)), u = s - i;
  const c = stops[i].map((a, k) => Math.round(a + (stops[i + 1][k] - a) * u));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function drawMap(map, choices, near) {
  const cv = $("heatmap"), g = cv.getContext("2d");
  const L = 60, T = 10, W = cv.width - L - 10, H = cv.height - T - 40;
  const nt = map.threads.length, nc = map.calls.length, cw = W / nc, ch = H / nt;
  const rewards = map.cells.map((c) => c[0]);
  const lo = Math.min(...rewards), hi = Math.max(...rewards);
  g.clearRect(0, 0, cv.width, cv.height);
  g.font = "11px sans-serif";
  map.cells.forEach((c, k) => {
    const ti = Math.floor(k / nc), ci = k % nc;
    g.fillStyle = color(hi > lo ? (c[0] - lo) / (hi - lo) : 0.5);
    g.fillRect(L + ci * cw, T + (nt - 1 - ti) * ch, cw + 0.5, ch + 0.5);
  });
  const x = (c) => L + ((c - map.calls[0]) / Math.max(1, map.calls[nc - 1] - map.calls[0])) * (W - cw) + cw / 2;
  const y = (t) => T + (nt - 1 - (t - map.threads[0]) / Math.max(1, map.threads[nt - 1] - map.threads[0]) * (nt - 1)) * ch + ch / 2;
  g.fillStyle = "#1d2330";
  map.threads.forEach((t) => g.fillText(String(t), L - 24, y(t) + 4));
  map.calls.forEach((c, i) => { if (nc <= 12 || i % 3 === 0) g.fillText(String(c), x(c) - 10, T + H + 14); });
  g.fillText("calls (fortio -n) →", L + W / 2 - 40, T + H + 30);
  g.save(); g.translate(14, T + H / 2 + 30); g.rotate(-Math.PI / 2); g.fillText("threads (-c) →", 0, 0); g.restore();
  let shown = 0;
  const maxR = Math.max(1e-9, ...near.map((r) => r.qps * r.rate));
  for (const r of near) {
    const [t, c] = [r.x[nRules()], r.x[nRules() + 1]];
    if (t < map.threads[0] || t > map.threads[nt - 1] || c < map.calls[0] || c > map.calls[nc - 1]) continue;
    shown++;
    g.beginPath(); g.arc(x(c) + (Math.random() - 0.5) * cw * 0.5, y(t) + (Math.random() - 0.5) * ch * 0.5, 3, 0, 7);
    g.fillStyle = color((r.qps * r.rate) / maxR); g.fill(); g.strokeStyle = "#fff"; g.stroke();
  }
  const o = map.optimum;
  g.fillStyle = "#ff2d55"; g.font = "bold 18px sans-serif"; g.fillText("★", x(o.calls) - 7, y(o.threads) + 6);
  g.font = "10px sans-serif";
  // Labels stacked per thread row so that neighbouring choices stay readable.
  const perRow = {};
  for (const c of choices.filter((c) => !c.error)) {
    const n = (perRow[c.threads] = (perRow[c.threads] || 0) + 1);
    g.beginPath(); g.arc(x(c.calls), y(c.threads), 5, 0, 7); g.fillStyle = "#fff"; g.fill();
    g.strokeStyle = "#000"; g.stroke();
    const ly = y(c.threads) - ch / 2 + 11 * n;
    g.beginPath(); g.moveTo(x(c.calls), y(c.threads)); g.lineTo(x(c.calls) + 6, ly - 3); g.stroke();
    g.fillStyle = "#000"; g.fillText(c.label.split("/")[0], x(c.calls) + 8, ly);
  }
  const bad = choices.filter((c) => c.error);
  $("map-info").innerHTML = `optimum (★): -c ${o.threads} -n ${o.calls}, reward <span id="out-opt-reward">${o.reward.toFixed(3)}</span>; ` +
    `agents: ${choices.filter((c) => !c.error).map((c) => `${c.label} → -c ${c.threads} -n ${c.calls}`).join("; ") || "none"}` +
    (bad.length ? `; <span class="warn">${bad.map((c) => `${c.label}: ${c.error}`).join("; ")}</span>` : "") +
    `; dataset rows near these rules: <span id="out-near">${near.length}</span> (${shown} on this grid)` +
    (state.rows.length ? "" : " <span class=warn>(no dataset served)</span>");
}

// ---- advisor ------------------------------------------------------------------------------
function advise() {
  try {
    const v = readValues();
    const levels = Number($("adv-levels").value);
    if (!Number.isInteger(levels) || levels < 2) throw new Error(`levels: \`${$("adv-levels").value}\` is not an integer >= 2`);
    const a = JSON.parse(state.sim.advise(v[nRules()], v[nRules() + 1], $("adv-objective").value, levels));
    const names = state.info.features.slice(0, nRules()).map((f) => f.name);
    const rule = (s) => names.map((n, i) => `${n}=${s.rules[i]}`).join(", ");
    $("adv-out").textContent = `${a.objective} of ${a.candidates} rules at -c ${v[nRules()]} -n ${v[nRules() + 1]}:\n` +
      `advised: ${rule(a.chosen)}\n  ${state.info.rate_label} ${a.chosen.rate.toFixed(4)} ± ${a.chosen.sd_rate.toFixed(4)}, QPS ${a.chosen.qps.toFixed(1)}\n` +
      `median:  ${rule(a.median)}\n  ${state.info.rate_label} ${a.median.rate.toFixed(4)} ± ${a.median.sd_rate.toFixed(4)}\n` +
      (a.flat ? `FLAT: the gap ${a.gap.toFixed(4)} is inside the model's spread ${a.spread.toFixed(4)}\n` : "") +
      a.extrapolation.map((e) => `EXTRAPOLATION: ${e}\n`).join("") +
      `(sfr2l advise --sim policies/${state.name} --threads ${v[nRules()]} --calls ${v[nRules() + 1]} --objective ${a.objective} writes it as YAML)`;
  } catch (e) {
    fail("advisor", e);
  }
}

// ---- traces -------------------------------------------------------------------------------
function seconds(d) {
  if (typeof d === "number") return d;
  let s = 0;
  for (const m of String(d).matchAll(/([\d.]+)(ms|us|ns|h|m|s)/g)) {
    s += Number(m[1]) * { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, ns: 1e-9 }[m[2]];
  }
  return s;
}

function showTraces(text, origin) {
  const recs = [];
  for (const line of text.split("\n")) {
    const i = line.indexOf("SFR2L_TRACE ");
    const json = i >= 0 ? line.slice(i + 12) : line.trim().startsWith("{") ? line.trim() : null;
    if (!json) continue;
    try { recs.push(JSON.parse(json)); } catch (e) { /* not a record */ }
  }
  if (!recs.length) throw new Error(`${origin}: no trace records found (lines with SFR2L_TRACE or JSON objects)`);
  // A record holds the whole rule; the simulator reads its study's inputs (names end in `_s`
  // where the rule field is a duration). The rate counts the study's failure codes.
  const codes = state.info ? state.info.failure_codes : [503];
  const value = (r, name) => {
    if (name === "threads" || name === "calls") return r[name];
    const key = name.endsWith("_s") ? name.slice(0, -2) : name;
    return key in r.rule ? seconds(r.rule[key]) : NaN;
  };
  const pts = recs.map((r) => {
    let pred = null;
    if (r.rule && state.sim) {
      const f = state.info.features.map((x) => value(r, x.name));
      try { pred = JSON.parse(state.sim.predict(Float64Array.from(f))).rate; } catch (e) { pred = null; }
    }
    const failed = codes.reduce((s, c) => s + (r.codes[String(c)] || 0), 0);
    return { run: r.run, rate: r.responses ? failed / r.responses : 0, pred };
  });
  const cv = $("traces"), g = cv.getContext("2d");
  const L = 40, W = cv.width - 50, H = cv.height - 30;
  g.clearRect(0, 0, cv.width, cv.height);
  g.strokeStyle = "#c3c9d2"; g.strokeRect(L, 5, W, H);
  g.fillStyle = "#1d2330"; g.font = "10px sans-serif"; g.fillText("1.0", 5, 12); g.fillText("0.0", 5, H + 5);
  g.fillText(`${state.info ? state.info.rate_label : "503 rate"} per run →`, L + 5, H + 20);
  const x = (i) => L + (pts.length > 1 ? (i / (pts.length - 1)) * (W - 10) + 5 : W / 2);
  const y = (v) => 5 + (1 - v) * H;
  pts.forEach((p, i) => {
    g.beginPath(); g.arc(x(i), y(p.rate), 3, 0, 7); g.fillStyle = "#1f6feb"; g.fill();
    if (p.pred !== null) { g.strokeStyle = "#d0342c"; g.beginPath(); g.moveTo(x(i) - 4, y(p.pred) - 4); g.lineTo(x(i) + 4, y(p.pred) + 4); g.moveTo(x(i) + 4, y(p.pred) - 4); g.lineTo(x(i) - 4, y(p.pred) + 4); g.stroke(); }
  });
  const withPred = pts.filter((p) => p.pred !== null);
  const mae = withPred.length ? withPred.reduce((s, p) => s + Math.abs(p.pred - p.rate), 0) / withPred.length : NaN;
  $("trace-info").innerHTML = `${origin}: <span id="out-traces">${pts.length}</span> records` +
    (withPred.length ? `, mean |predicted − measured| ${state.info.rate_label} ${mae.toFixed(4)} over ${withPred.length} with a rule` : "");
}

function wireTraces() {
  const drop = $("drop");
  const read = (file) => file.text().then((t) => showTraces(t, file.name)).catch((e) => fail("traces", e));
  drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove("over"); if (e.dataTransfer.files[0]) read(e.dataTransfer.files[0]); };
  $("trace-file").onchange = (e) => { if (e.target.files[0]) read(e.target.files[0]); };
  $("trace-lab").onclick = () => fetchOk("/api/traces").then((t) => showTraces(t, "lab")).catch((e) => fail("traces", e));
}

// ---- start --------------------------------------------------------------------------------
async function main() {
  try {
    await init();
  } catch (e) {
    return fail("loading the wasm module (/pkg/sfr2l_explorer_bg.wasm)", e);
  }
  $("adv-run").onclick = advise;
  wireTraces();
  try {
    await loadListing();
    if (params.get("advise")) { $("adv-objective").value = params.get("advise"); advise(); }
    if (params.get("traces") === "lab") showTraces(await fetchOk("/api/traces"), "lab");
  } catch (e) {
    fail(state.name || "policies", e);
  }
}
main();
