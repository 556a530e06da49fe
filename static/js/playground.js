// The training playground: the form <-> URL, POST /train as Server-Sent Events read from fetch(),
// a live uPlot chart, an SVG drawing of the network, the decision boundary and confusion matrix.
"use strict";

(() => {
  const form = document.getElementById("train-form");
  if (!form) return;
  const $ = (id) => document.getElementById(id);
  const startButton = $("start");
  const stopButton = $("stop");
  const statusLine = $("status");
  const progress = $("progress");
  const hiddenInput = $("f-hidden");
  const hiddenError = $("f-hidden-error");
  const FEATURES = { digits: 64, xor: 2, circles: 2, moons: 2, spiral: 2 };
  const CLASSES = { digits: 10, xor: 2, circles: 2, moons: 2, spiral: 3 };
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
    if (FEATURES[dataset] === 2 && noise !== "") body.noise = Number(noise);
    return body;
  }

  function queryFor(body) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(body)) {
      if (key === "hidden_layers") params.set(key, (value || []).join(","));
      else if (value === null) params.set(key, "full");
      else params.set(key, String(value));
    }
    return params.toString().replace(/%2C/g, ",");
  }

  function syncForm() {
    const dataset = form.elements.dataset.value;
    const twoD = FEATURES[dataset] === 2;
    $("noise-field").hidden = !twoD;
    form.elements.noise.disabled = !twoD;
    form.elements.noise.placeholder = twoD ? `default ${defaultNoise[dataset]}` : "";
    const body = readForm();
    const ok = body.hidden_layers !== null;
    hiddenInput.setAttribute("aria-invalid", ok ? "false" : "true");
    hiddenError.hidden = ok;
    hiddenError.textContent = ok ? "" : "Use 1 to 8 whole numbers from 1 to 1024, separated by commas.";
    if (ok) drawNetwork([FEATURES[dataset], ...body.hidden_layers, CLASSES[dataset]], body.activation);
    history.replaceState(null, "", ROOT + "/playground?" + queryFor(body));
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

  // ---- decision boundary and confusion matrix ------------------------------------------------------
  let boundaryPoints = [];
  function drawBoundary(frame) {
    if (frame.points) boundaryPoints = frame.points;
    const canvas = $("boundary");
    const ctx = canvas.getContext("2d");
    const size = canvas.width;
    const n = frame.grid.length;
    const colours = [css("--class-0"), css("--class-1"), css("--class-2")];
    // One pixel per grid cell, scaled up in one draw: no seams between cells.
    const rgb = colours.map((hex) => [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16)));
    const pixels = new ImageData(n, n);
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < n; c++) {
        const at = ((n - 1 - r) * n + c) * 4; // row 0 of the grid is the bottom of the picture
        pixels.data.set([...rgb[frame.grid[r][c]], 255], at);
      }
    }
    const small = document.createElement("canvas");
    small.width = small.height = n;
    small.getContext("2d").putImageData(pixels, 0, 0);
    ctx.clearRect(0, 0, size, size);
    ctx.fillStyle = css("--surface");
    ctx.fillRect(0, 0, size, size);
    ctx.globalAlpha = 0.3;
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, 0, 0, size, size);
    ctx.globalAlpha = 1;
    const [x0, x1] = frame.x_range, [y0, y1] = frame.y_range;
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = css("--surface");
    for (const [x, y, label] of boundaryPoints) {
      const px = ((x - x0) / (x1 - x0)) * size;
      const py = size - ((y - y0) / (y1 - y0)) * size;
      ctx.beginPath();
      ctx.arc(px, py, 4.5, 0, 2 * Math.PI);
      ctx.fillStyle = colours[label];
      ctx.fill();
      ctx.stroke();
    }
  }

  function drawConfusion(matrix) {
    const table = $("confusion");
    table.replaceChildren();
    const head = table.createTHead().insertRow();
    head.appendChild(document.createElement("th"));
    matrix.forEach((_, j) => {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = String(j);
      head.appendChild(th);
    });
    const bodyEl = table.createTBody();
    matrix.forEach((row, i) => {
      const tr = bodyEl.insertRow();
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = String(i);
      tr.appendChild(th);
      const total = row.reduce((a, b) => a + b, 0) || 1;
      row.forEach((count, j) => {
        const td = tr.insertCell();
        const share = count / total;
        td.textContent = String(count);
        if (i === j) td.classList.add("diag");
        td.style.setProperty("--w", (i === j ? share * 0.85 : Math.min(1, share * 3) * 0.85).toFixed(3));
        td.title = `true ${i}, predicted ${j}: ${count}`;
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

  function showResult(result) {
    $("m-speed").textContent = Math.round(result.samples_per_second).toLocaleString();
    if (result.decision_boundary) drawBoundary(result.decision_boundary);
    drawConfusion(result.confusion_matrix);
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
    const twoD = FEATURES[body.dataset] === 2;
    $("boundary-card").hidden = !twoD;
    $("confusion-card").hidden = true;
    boundaryPoints = [];
    if (twoD) $("boundary").getContext("2d").clearRect(0, 0, 480, 480);
    for (const id of ["m-epoch", "m-loss", "m-train", "m-test", "m-speed"]) $(id).textContent = "–";
    progress.value = 0;
    startButton.disabled = true;
    stopButton.disabled = false;
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
      }
    }
  }

  form.addEventListener("submit", start);
  form.addEventListener("input", syncForm);
  form.addEventListener("change", syncForm);
  stopButton.addEventListener("click", () => {
    if (controller) controller.abort();
  });
  syncForm();
  makeChart();
})();
