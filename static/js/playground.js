// The training playground: the form <-> URL, POST /train as Server-Sent Events read from fetch(),
// a live uPlot chart, an SVG drawing of the network, the decision boundary and confusion matrix;
// the learner's own points (a CSV, clicks, typed), the trained network's download, and
// POST /train/step one mini-batch at a time with every number in tables.
"use strict";

(() => {
  const form = document.getElementById("train-form");
  if (!form) return;
  const $ = (id) => document.getElementById(id);
  const startButton = $("start");
  const stopButton = $("stop");
  const statusLine = $("status");
  const stepButton = $("step");
  let stepState = null, stepKey = "", stepping = false;
  let shownDataset = null;
  const progress = $("progress");
  const hiddenInput = $("f-hidden");
  const hiddenError = $("f-hidden-error");
  const FEATURES = { digits: 64, xor: 2, circles: 2, moons: 2, spiral: 2, custom: 2 };
  const CLASSES = { digits: 10, xor: 2, circles: 2, moons: 2, spiral: 3 };
  // The same bounds the server checks (app/training/custom.py); it checks again whatever we say.
  const MAX_ROWS = 2000, MAX_CLASSES = 10, MAX_LABEL = 40;
  // Step by step takes networks of at most this many hidden layers of this many units.
  const STEP_LAYERS = 3, STEP_UNITS = 8;
  // (form.dataset is the select named "dataset", not the data-* map, so read the attribute.)
  const defaultNoise = JSON.parse(form.getAttribute("data-default-noise") || "{}");
  // The site's prefix (ROOT_PATH behind a proxy): every URL this script asks for starts with it.
  const ROOT = document.documentElement.dataset.root || "";
  let controller = null;
  let chart = null;
  let chartData = [[], [], [], []];

  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const pct = (x) => (x * 100).toFixed(1) + "%";

  // ---- the form, the URL and the request body -------------------------------------------------
  function parseHidden(text) {
    const parts = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
    if (parts.length < 1 || parts.length > 8) return null;
    const units = parts.map(Number);
    if (units.some((n) => !Number.isInteger(n) || n < 1 || n > 1024)) return null;
    return units;
  }

  function readForm() {
    const data = new FormData(form);
    const dataset = data.get("dataset");
    const body = {
      dataset,
      hidden_layers: parseHidden(String(data.get("hidden_layers") || "")),
      activation: data.get("activation"),
      epochs: Number(data.get("epochs")),
      learning_rate: Number(data.get("learning_rate")),
      batch_size: String(data.get("batch_size")).trim().toLowerCase() === "full" ? null : Number(data.get("batch_size")),
      momentum: Number(data.get("momentum")),
      init: data.get("init"),
      seed: Number(data.get("seed")),
    };
    const noise = String(data.get("noise") || "").trim();
    if (FEATURES[dataset] === 2 && dataset !== "custom" && noise !== "") body.noise = Number(noise);
    if (dataset === "custom") body.data = { x: points.map((p) => [p.x1, p.x2]), y: points.map((p) => p.label) };
    return body;
  }

  function queryFor(body) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(body)) {
      if (key === "data") continue; // the points never fit in a link: the page offers a CSV
      if (key === "hidden_layers") params.set(key, (value || []).join(","));
      else if (value === null) params.set(key, "full");
      else params.set(key, String(value));
    }
    return params.toString().replace(/%2C/g, ",");
  }

  function syncForm() {
    const dataset = form.elements.dataset.value;
    const twoD = FEATURES[dataset] === 2;
    const custom = dataset === "custom";
    if (dataset !== shownDataset) {
      // another set: the old boundary and its range belong to the old one
      shownDataset = dataset;
      lastFrame = null;
      boundaryPoints = [];
      view = { x0: -1.5, x1: 1.5, y0: -1.5, y1: 1.5 };
      if (custom) fitView();
      else $("boundary-card").hidden = true;
    }
    $("noise-field").hidden = !twoD || custom;
    form.elements.noise.disabled = !twoD || custom;
    $("own-data").hidden = !custom;
    if (custom) {
      $("boundary-card").hidden = false;
      $("boundary-caption").textContent = "Your points: click the plot to add one of the class chosen under Data";
      if (!lastFrame) render();
    }
    form.elements.noise.placeholder = twoD ? `default ${defaultNoise[dataset]}` : "";
    const body = readForm();
    const ok = body.hidden_layers !== null;
    hiddenInput.setAttribute("aria-invalid", ok ? "false" : "true");
    hiddenError.hidden = ok;
    hiddenError.textContent = ok ? "" : "Use 1 to 8 whole numbers from 1 to 1024, separated by commas.";
    const classes = custom ? Math.max(2, classOrder().length) : CLASSES[dataset];
    if (ok) drawNetwork([FEATURES[dataset], ...body.hidden_layers, classes], body.activation);
    history.replaceState(null, "", ROOT + "/playground?" + queryFor(body));
    const small = ok && body.hidden_layers.length <= STEP_LAYERS && Math.max(...body.hidden_layers) <= STEP_UNITS;
    // not disabled while a step is asked for: a disabled button would lose the keyboard focus
    stepButton.disabled = !small || controller !== null;
    $("step-hint").classList.toggle("is-error", ok && !small);
    const key = JSON.stringify(body);
    if (key !== stepKey) resetSteps();
    stepKey = key;
    return body;
  }

  // ---- the network drawing ----------------------------------------------------------------------
  const SVG = "http://www.w3.org/2000/svg";
  function svgEl(name, attrs, text) {
    const el = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function drawNetwork(sizes, activation) {
    const svg = $("network");
    const W = 400, H = 240, top = 18, bottom = 40, maxShown = 8, r = 7, margin = 34;
    const title = svg.querySelector("title");
    svg.replaceChildren(title);
    title.textContent = "Network: " + sizes.join(" → ") + " units, " + activation + " hidden layers, softmax output";
    const step = (W - 2 * margin) / (sizes.length - 1);
    const columns = sizes.map((n, i) => {
      const shown = Math.min(n, maxShown);
      const span = H - top - bottom;
      const gap = shown > 1 ? Math.min(26, span / (shown - 1)) : 0;
      const y0 = top + (span - gap * (shown - 1)) / 2;
      const ys = Array.from({ length: shown }, (_, k) => y0 + k * gap);
      return { x: margin + i * step, ys, n, truncated: n > shown };
    });
    const edges = svgEl("g", {});
    for (let i = 0; i + 1 < columns.length; i++) {
      for (const ya of columns[i].ys) {
        for (const yb of columns[i + 1].ys) {
          edges.appendChild(svgEl("line", { class: "edge", x1: columns[i].x, y1: ya, x2: columns[i + 1].x, y2: yb }));
        }
      }
    }
    svg.appendChild(edges);
    columns.forEach((col, i) => {
      const kind = i === 0 ? "input" : i === columns.length - 1 ? "output" : "hidden";
      col.ys.forEach((y, k) => {
        if (col.truncated && k === col.ys.length - 2) {
          svg.appendChild(svgEl("text", { class: "more", x: col.x, y: y + 5 }, "⋮"));
        } else {
          svg.appendChild(svgEl("circle", { class: "node " + kind, cx: col.x, cy: y, r }));
        }
      });
      const label = i === 0 ? "inputs" : kind === "output" ? "softmax" : activation;
      svg.appendChild(svgEl("text", { x: col.x, y: H - 22 }, String(col.n)));
      svg.appendChild(svgEl("text", { x: col.x, y: H - 6 }, label));
    });
  }

  // ---- the chart -------------------------------------------------------------------------------
  function makeChart() {
    const box = $("chart");
    box.replaceChildren();
    chartData = [[], [], [], []];
    const text = css("--text"), grid = css("--border");
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
    chart = new uPlot(
      {
        width: Math.max(260, box.clientWidth),
        height: 280,
        scales: { x: { time: false }, loss: { auto: true }, acc: { range: [0, 1] } },
        legend: { live: false }, // series names only: values sit in the metrics above
        series: [
          { label: "epoch" },
          { label: "loss", scale: "loss", stroke: css("--class-1"), width: 2, value: (u, v) => (v == null ? "–" : v.toFixed(4)) },
          { label: "train acc", scale: "acc", stroke: css("--class-0"), width: 2, value: (u, v) => (v == null ? "–" : pct(v)) },
          { label: "test acc", scale: "acc", stroke: css("--class-2"), width: 2, dash: [6, 4], value: (u, v) => (v == null ? "–" : pct(v)) },
        ],
        axes: [
          { ...axis, label: "epoch" },
          { ...axis, scale: "loss", label: "loss" },
          { ...axis, scale: "acc", side: 1, label: "accuracy", values: (u, ticks) => ticks.map((t) => Math.round(t * 100) + "%"), grid: { show: false } },
        ],
      },
      chartData,
      box,
    );
  }

  window.addEventListener("resize", () => {
    if (chart) chart.setSize({ width: Math.max(260, $("chart").clientWidth), height: 280 });
  });

  // ---- decision boundary, the learner's points and the confusion matrix ----------------------------
  let boundaryPoints = [];
  let lastFrame = null;
  // What the plot shows: the last boundary's range, or where the learner's points are.
  let view = { x0: -1.5, x1: 1.5, y0: -1.5, y1: 1.5 };
  const palette = () => Array.from({ length: MAX_CLASSES }, (_, k) => css(`--class-${k}`));

  function drawBoundary(frame) {
    if (frame.points) boundaryPoints = frame.points;
    lastFrame = frame;
    view = { x0: frame.x_range[0], x1: frame.x_range[1], y0: frame.y_range[0], y1: frame.y_range[1] };
    render();
  }

  function render() {
    const canvas = $("boundary");
    const ctx = canvas.getContext("2d");
    const size = canvas.width;
    const colours = palette();
    ctx.clearRect(0, 0, size, size);
    ctx.fillStyle = css("--surface");
    ctx.fillRect(0, 0, size, size);
    if (lastFrame) {
      // One pixel per grid cell, scaled up in one draw: no seams between cells.
      const n = lastFrame.grid.length;
      const rgb = colours.map((hex) => [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16)));
      const pixels = new ImageData(n, n);
      for (let r = 0; r < n; r++) {
        for (let c = 0; c < n; c++) {
          const at = ((n - 1 - r) * n + c) * 4; // row 0 of the grid is the bottom of the picture
          pixels.data.set([...rgb[lastFrame.grid[r][c]], 255], at);
        }
      }
      const small = document.createElement("canvas");
      small.width = small.height = n;
      small.getContext("2d").putImageData(pixels, 0, 0);
      ctx.globalAlpha = 0.3;
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(small, 0, 0, size, size);
      ctx.globalAlpha = 1;
    }
    const custom = form.elements.dataset.value === "custom";
    const order = classOrder();
    const shown = custom ? points.map((p) => [p.x1, p.x2, order.indexOf(p.label)]) : boundaryPoints;
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = css("--surface");
    for (const [x, y, label] of shown) {
      const px = ((x - view.x0) / (view.x1 - view.x0)) * size;
      const py = size - ((y - view.y0) / (view.y1 - view.y0)) * size;
      ctx.beginPath();
      ctx.arc(px, py, 4.5, 0, 2 * Math.PI);
      ctx.fillStyle = colours[label % MAX_CLASSES];
      ctx.fill();
      ctx.stroke();
    }
    const legend = $("legend");
    legend.replaceChildren();
    if (custom) {
      for (const [k, name] of order.entries()) {
        const li = document.createElement("li");
        const swatch = document.createElement("span");
        swatch.className = "pg-swatch";
        swatch.style.background = colours[k];
        li.append(swatch, `${name}: ${points.filter((p) => p.label === name).length}`);
        legend.appendChild(li);
      }
    }
  }

  // ---- the learner's own points ---------------------------------------------------------------
  let points = [];
  const classOrder = () => [...new Set(points.map((p) => p.label))]; // as the server numbers them

  function splitCsvLine(line) {
    // cells split on commas; "quoted, cells" with "" for a quote, as the download writes them
    const cells = [];
    let cell = "", quoted = false;
    for (let i = 0; i < line.length; i++) {
      const ch = line[i];
      if (quoted) {
        if (ch === '"' && line[i + 1] === '"') { cell += '"'; i++; }
        else if (ch === '"') quoted = false;
        else cell += ch;
      } else if (ch === '"') quoted = true;
      else if (ch === ",") { cells.push(cell); cell = ""; }
      else cell += ch;
    }
    cells.push(cell);
    return cells;
  }

  const toNumber = (text) => {
    const t = String(text).trim();
    const v = t === "" ? NaN : Number(t);
    return Number.isFinite(v) ? v : null;
  };

  function parseCsv(text) {
    const lines = text.split(/\r\n|\n|\r/).map((line, i) => [i + 1, line]).filter(([, line]) => line.trim() !== "");
    if (lines.length && toNumber(splitCsvLine(lines[0][1])[0]) === null) lines.shift(); // a header
    if (lines.length > MAX_ROWS) return { error: `${lines.length} rows; at most ${MAX_ROWS}` };
    const parsed = [];
    for (const [n, line] of lines) {
      const cells = splitCsvLine(line);
      if (cells.length !== 3) return { error: `line ${n}: ${cells.length} cells; each line is x1,x2,label` };
      const [x1, x2] = [toNumber(cells[0]), toNumber(cells[1])];
      if (x1 === null) return { error: `line ${n}: x1 is "${cells[0].trim()}", not a finite number` };
      if (x2 === null) return { error: `line ${n}: x2 is "${cells[1].trim()}", not a finite number` };
      const label = cells[2].trim();
      if (!label || label.length > MAX_LABEL) return { error: `line ${n}: a label is 1 to ${MAX_LABEL} characters` };
      parsed.push({ x1, x2, label });
    }
    const classes = new Set(parsed.map((p) => p.label)).size;
    if (classes > MAX_CLASSES) return { error: `${classes} classes; at most ${MAX_CLASSES}` };
    return { points: parsed };
  }

  function fitView() {
    if (points.length < 2) return;
    const xs = points.map((p) => p.x1), ys = points.map((p) => p.x2);
    const pad = (lo, hi) => (hi > lo ? (hi - lo) * 0.08 : 1);
    const [a, b, c, d] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    view = { x0: a - pad(a, b), x1: b + pad(a, b), y0: c - pad(c, d), y1: d + pad(c, d) };
  }

  function ownError(text) {
    $("own-error").hidden = !text;
    $("own-error").textContent = text || "";
  }

  function pointsChanged() {
    const order = classOrder();
    $("own-count").textContent = points.length
      ? `${points.length} point${points.length === 1 ? "" : "s"} in ${order.length} class${order.length === 1 ? "" : "es"}` +
        (order.length < 2 ? ": add a second class to train." : ".")
      : "No points yet.";
    $("undo-point").disabled = $("clear-points").disabled = $("download-csv").disabled = points.length === 0;
    const list = $("own-classes");
    list.replaceChildren(...order.map((name) => Object.assign(document.createElement("option"), { value: name })));
    syncForm();
    render();
  }

  function addPoint(x1, x2) {
    const label = ($("f-point-class").value || "").trim();
    if (!label || label.length > MAX_LABEL) return ownError(`Give the class a name of 1 to ${MAX_LABEL} characters.`);
    if (points.length >= MAX_ROWS) return ownError(`At most ${MAX_ROWS} points.`);
    if (!classOrder().includes(label) && classOrder().length >= MAX_CLASSES) return ownError(`At most ${MAX_CLASSES} classes.`);
    ownError("");
    points.push({ x1: Math.round(x1 * 1000) / 1000, x2: Math.round(x2 * 1000) / 1000, label });
    pointsChanged();
  }

  function csvCell(text) {
    const t = String(text);
    return /[",\r\n]/.test(t) ? '"' + t.replace(/"/g, '""') + '"' : t;
  }

  function drawConfusion(matrix, names) {
    const name = (k) => (names ? names[k] : String(k));
    const table = $("confusion");
    table.replaceChildren();
    const head = table.createTHead().insertRow();
    head.appendChild(document.createElement("th"));
    matrix.forEach((_, j) => {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = name(j);
      head.appendChild(th);
    });
    const bodyEl = table.createTBody();
    matrix.forEach((row, i) => {
      const tr = bodyEl.insertRow();
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = name(i);
      tr.appendChild(th);
      const total = row.reduce((a, b) => a + b, 0) || 1;
      row.forEach((count, j) => {
        const td = tr.insertCell();
        const share = count / total;
        td.textContent = String(count);
        if (i === j) td.classList.add("diag");
        td.style.setProperty("--w", (i === j ? share * 0.85 : Math.min(1, share * 3) * 0.85).toFixed(3));
        td.title = `true ${name(i)}, predicted ${name(j)}: ${count}`;
      });
    });
  }

  // ---- a run ----------------------------------------------------------------------------------------
  function setStatus(text, isError) {
    statusLine.textContent = text;
    statusLine.classList.toggle("is-error", Boolean(isError));
  }

  function showRow(row, epochs) {
    chartData[0].push(row.epoch);
    chartData[1].push(row.loss);
    chartData[2].push(row.train_accuracy);
    chartData[3].push(row.test_accuracy);
    chart.setData(chartData);
    progress.value = row.epoch / epochs;
    $("m-epoch").textContent = `${row.epoch}/${epochs}`;
    $("m-loss").textContent = row.loss == null ? "not finite" : row.loss.toFixed(4);
    $("m-train").textContent = pct(row.train_accuracy);
    $("m-test").textContent = pct(row.test_accuracy);
  }

  function showDownload(result) {
    const link = $("download"), note = $("download-note");
    link.hidden = !result.exportable;
    note.hidden = result.exportable;
    if (result.exportable) {
      link.href = `${ROOT}/train/${result.run_id}/export`;
      note.textContent = "";
    } else {
      note.textContent = result.status === "diverged"
        ? "A diverged network has no weights worth downloading."
        : "This network has more than 100,000 parameters, too many to keep for download.";
    }
  }

  function showResult(result) {
    showDownload(result);
    $("m-speed").textContent = Math.round(result.samples_per_second).toLocaleString();
    if (result.decision_boundary) drawBoundary(result.decision_boundary);
    drawConfusion(result.confusion_matrix, result.classes);
    $("confusion-card").hidden = false;
    const seconds = result.duration_seconds.toFixed(2);
    if (result.status === "diverged") {
      setStatus(`Diverged at epoch ${result.history.length}: the loss stopped being finite. Try a smaller learning rate.`, true);
    } else {
      setStatus(`Done in ${seconds} s: test accuracy ${pct(result.test_accuracy)}.`);
    }
  }

  function handleEvent(name, data, epochs) {
    const value = JSON.parse(data);
    if (name === "epoch") {
      showRow(value, epochs);
      setStatus(`Training… epoch ${value.epoch} of ${epochs}`);
    } else if (name === "boundary") {
      drawBoundary(value);
    } else if (name === "result") {
      showResult(value);
    } else if (name === "queued") {
      // TRAINING_BACKEND=queue: the run waits for a worker; position 1 starts next
      setStatus(value.position > 0 ? `Waiting for a training worker: number ${value.position} in line…` : "Starting…");
    } else if (name === "error") {
      setStatus(value.status === 429 ? "The server is busy; try again in a few seconds." : value.detail, true);
    }
  }

  async function start(event) {
    event.preventDefault();
    const body = syncForm();
    if (body.hidden_layers === null) {
      hiddenInput.focus();
      return;
    }
    if (controller) controller.abort();
    const mine = (controller = new AbortController());
    makeChart();
    if (body.dataset === "custom" && classOrder().length < 2) {
      setStatus("Add points of at least two classes first (under Data).", true);
      $("f-csv").focus();
      return;
    }
    const twoD = FEATURES[body.dataset] === 2;
    $("boundary-card").hidden = !twoD;
    $("confusion-card").hidden = true;
    $("download").hidden = $("download-note").hidden = true;
    boundaryPoints = [];
    lastFrame = null;
    if (body.dataset === "custom") fitView();
    if (twoD) render();
    for (const id of ["m-epoch", "m-loss", "m-train", "m-test", "m-speed"]) $(id).textContent = "–";
    progress.value = 0;
    startButton.disabled = true;
    stopButton.disabled = false;
    stepButton.disabled = true;
    setStatus("Starting…");
    try {
      let response;
      // A run just stopped holds this visitor's place until its process is free again (within
      // an epoch): a short Retry-After is waited out, a few times, before giving up.
      for (let tries = 0; ; tries++) {
        response = await fetch(ROOT + "/train", {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
          body: JSON.stringify(body),
          signal: mine.signal,
        });
        const wait = Number(response.headers.get("Retry-After"));
        if (response.status !== 429 || tries >= 5 || !(wait > 0 && wait <= 2)) break;
        setStatus("Waiting for your previous run to stop…");
        await new Promise((resolve) => setTimeout(resolve, wait * 1000));
        mine.signal.throwIfAborted();
      }
      if (!response.ok) {
        let detail = `The server answered ${response.status}.`;
        try {
          detail = (await response.json()).detail || detail;
        } catch (_) { /* not JSON */ }
        setStatus(detail, true);
        return;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let name = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) name = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (data.length) handleEvent(name, data.join("\n"), body.epochs);
        }
      }
    } catch (error) {
      if (error.name === "AbortError") setStatus("Stopped: the server has stopped training this run.");
      else setStatus("The connection failed: " + error.message, true);
    } finally {
      if (controller === mine) {
        controller = null;
        startButton.disabled = false;
        stopButton.disabled = true;
        syncForm();
      }
    }
  }

  // ---- step by step --------------------------------------------------------------------------------
  const num = (v) => (v === null || v === undefined ? "not finite" : Math.abs(v) < 1e-4 && v !== 0 ? v.toExponential(3) : v.toFixed(4));
  let tableCount = 0;

  function table(captionText, columns, rows) {
    // a captioned table with column and row headers, in a focusable scrolling region
    const wrap = document.createElement("div");
    wrap.className = "pg-table-wrap pg-step-table";
    wrap.tabIndex = 0;
    wrap.setAttribute("role", "region");
    const el = document.createElement("table");
    const caption = el.createCaption();
    caption.id = `step-table-${++tableCount}`;
    caption.textContent = captionText;
    wrap.setAttribute("aria-labelledby", caption.id);
    const head = el.createTHead().insertRow();
    for (const name of columns) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = name;
      head.appendChild(th);
    }
    const tbody = el.createTBody();
    for (const [name, ...values] of rows) {
      const tr = tbody.insertRow();
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = name;
      tr.appendChild(th);
      for (const v of values) tr.insertCell().textContent = typeof v === "string" ? v : num(v);
    }
    wrap.appendChild(el);
    return wrap;
  }

  function renderStep(answer) {
    const classes = answer.classes || null;
    const name = (k) => (classes ? classes[k] : String(k));
    const end = answer.batch_start + answer.batch_size;
    $("step-summary").textContent =
      `Step ${answer.step}, epoch ${answer.epoch}: trained on training rows ${answer.batch_start + 1} to ${end}. ` +
      `Batch loss before the update ${num(answer.loss)}, batch accuracy ${pct(answer.batch_accuracy)}; ` +
      `test accuracy after it ${pct(answer.test_accuracy)}.`;
    const box = $("step-layers");
    box.replaceChildren();
    tableCount = 0;
    const shown = answer.inputs.length;
    if (answer.inputs[0] && answer.inputs[0].length <= 2) {
      box.appendChild(table(
        `The first ${shown} samples of the batch (inputs as trained, standardised for your own points)`,
        ["Sample", "x1", "x2", "Class"],
        answer.inputs.map((x, i) => [`Sample ${i + 1}`, ...x, name(answer.labels[i])]),
      ));
    }
    for (const layer of answer.layers) {
      const section = document.createElement("section");
      section.className = "pg-step-layer";
      const h = document.createElement("h3");
      const kind = layer.activation === "softmax" ? "softmax output" : `${layer.activation} units`;
      h.textContent = `Layer ${layer.layer}: ${layer.inputs} inputs → ${layer.units} ${kind}`;
      section.appendChild(h);
      const units = Array.from({ length: layer.units }, (_, j) => (layer.activation === "softmax" ? `P(${name(j)})` : `Unit ${j + 1}`));
      section.appendChild(table(
        `Layer ${layer.layer} outputs (activations) for the first ${shown} samples`,
        ["Sample", ...units],
        layer.activations.map((row, i) => [`Sample ${i + 1}`, ...row]),
      ));
      const rows = [];
      const from = layer.layer === 1 ? "input" : "unit";
      layer.weights.forEach((row, i) => row.forEach((w, j) => {
        rows.push([`w ${from} ${i + 1} → unit ${j + 1}`, w, layer.weight_gradients[i][j], layer.weight_updates[i][j]]);
      }));
      layer.biases.forEach((b, j) => rows.push([`bias of unit ${j + 1}`, b, layer.bias_gradients[j], layer.bias_updates[j]]));
      section.appendChild(table(
        `Layer ${layer.layer} weights and biases: value before the step, gradient of the loss, update applied`,
        ["Parameter", "Before", "Gradient ∂L/∂w", "Update −η·∂L/∂w"],
        rows,
      ));
      box.appendChild(section);
    }
    $("step-card").hidden = false;
  }

  function resetSteps() {
    stepState = null;
    $("step-reset").disabled = true;
  }

  async function step() {
    const body = syncForm();
    if (stepButton.disabled || stepping) return;
    if (body.dataset === "custom" && classOrder().length < 2) {
      setStatus("Add points of at least two classes first (under Data).", true);
      return;
    }
    stepping = true;
    $("step-card").setAttribute("aria-busy", "true");
    setStatus(stepState ? `Training step ${stepState.step + 1}…` : "Training step 1…");
    try {
      const response = await fetch(ROOT + "/train/step", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ config: body, state: stepState }),
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) {
        setStatus(answer.detail || `The server answered ${response.status}.`, true);
        return;
      }
      renderStep(answer);
      stepState = answer.state.params ? answer.state : null;
      $("step-reset").disabled = stepState === null;
      $("m-epoch").textContent = `step ${answer.step}`;
      $("m-loss").textContent = num(answer.loss);
      $("m-train").textContent = pct(answer.batch_accuracy);
      $("m-test").textContent = pct(answer.test_accuracy);
      if (answer.decision_boundary) {
        $("boundary-card").hidden = false;
        drawBoundary(answer.decision_boundary);
      }
      setStatus(stepState
        ? `Step ${answer.step} done: the tables below show its numbers. Press Step for the next mini-batch.`
        : "The weights stopped being finite: the steps start again from the first. Try a smaller learning rate.", !stepState);
    } catch (error) {
      setStatus("The connection failed: " + error.message, true);
    } finally {
      stepping = false;
      $("step-card").removeAttribute("aria-busy");
      syncForm();
    }
  }

  form.addEventListener("submit", start);
  form.addEventListener("input", syncForm);
  form.addEventListener("change", syncForm);
  stepButton.addEventListener("click", step);
  $("step-reset").addEventListener("click", () => {
    resetSteps();
    $("step-card").hidden = true;
    setStatus("Steps reset: the next Step starts from the initial weights.");
    stepButton.focus();
  });
  $("boundary").addEventListener("click", (event) => {
    if (form.elements.dataset.value !== "custom") return;
    const rect = event.currentTarget.getBoundingClientRect();
    const fx = (event.clientX - rect.left) / rect.width, fy = (event.clientY - rect.top) / rect.height;
    addPoint(view.x0 + fx * (view.x1 - view.x0), view.y1 - fy * (view.y1 - view.y0));
  });
  const typedPoint = () => {
    const x1 = toNumber($("f-point-x1").value), x2 = toNumber($("f-point-x2").value);
    if (x1 === null || x2 === null) return ownError("Type two numbers, x1 and x2, for the point.");
    addPoint(x1, x2);
    $("f-point-x1").value = $("f-point-x2").value = "";
    $("f-point-x1").focus();
  };
  $("add-point").addEventListener("click", typedPoint);
  for (const id of ["f-point-x1", "f-point-x2", "f-point-class"]) {
    $(id).addEventListener("keydown", (event) => {
      if (event.key === "Enter") { // not the training form's submit: add the typed point
        event.preventDefault();
        typedPoint();
      }
    });
  }
  $("undo-point").addEventListener("click", () => { points.pop(); pointsChanged(); });
  $("clear-points").addEventListener("click", () => {
    points = [];
    lastFrame = null;
    view = { x0: -1.5, x1: 1.5, y0: -1.5, y1: 1.5 };
    pointsChanged();
  });
  $("f-csv").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    if (file.size > 400_000) return ownError("The file is larger than 400 KB; at most 2,000 rows are taken.");
    const parsed = parseCsv(await file.text());
    if (parsed.error) return ownError(`${file.name}: ${parsed.error}`);
    ownError("");
    points = parsed.points;
    lastFrame = null;
    fitView();
    if (points.length) $("f-point-class").value = points[0].label; // clicks add to a real class
    pointsChanged();
  });
  $("download-csv").addEventListener("click", () => {
    const text = "x1,x2,label\n" + points.map((p) => `${p.x1},${p.x2},${csvCell(p.label)}`).join("\n") + "\n";
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    link.download = "points.csv";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  });
  stopButton.addEventListener("click", () => {
    if (controller) controller.abort();
  });
  syncForm();
  makeChart();
})();
