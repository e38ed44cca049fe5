// The "Tables" tab: a form built from the model card's features (no HTML per model), the
// model's answer, and for a model whose card names a feature to chart over (bike rentals
// over the hours of the day) the prediction across that feature's range.
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const CHART = { width: 480, height: 240, left: 48, right: 12, top: 12, bottom: 32 };

  const select = document.getElementById("tabular-model");
  const form = document.getElementById("tabular-form");
  const fields = document.getElementById("tabular-fields");
  const status = document.getElementById("tabular-status");
  const answer = document.getElementById("tabular-answer");
  const probabilities = document.getElementById("tabular-probabilities");
  const chartFigure = document.getElementById("tabular-chart-figure");
  const chart = document.getElementById("tabular-chart");
  const caption = document.getElementById("tabular-chart-caption");
  let models = [];
  let latest = 0; // the newest prediction asked for; answers to older ones are dropped

  const current = () => models.find((m) => m.name === select.value);
  const describe = (f) => [f.label || f.name, f.unit ? `(${f.unit})` : ""].join(" ").trim();

  // One labelled input per feature, chosen by its type.
  function inputFor(feature) {
    let input;
    if (feature.kind === "category") {
      input = document.createElement("select");
      input.append(...feature.categories.map((c) => new Option(c, c)));
      if (feature.default !== undefined) input.value = String(feature.default);
    } else if (feature.kind === "boolean") {
      input = document.createElement("input");
      input.type = "checkbox";
      input.checked = feature.default === true;
    } else {
      input = document.createElement("input");
      input.type = "number";
      input.step = feature.kind === "integer" ? "1" : "any";
      if (feature.minimum !== undefined) input.min = feature.minimum;
      if (feature.maximum !== undefined) input.max = feature.maximum;
      if (feature.default !== undefined) input.value = feature.default;
      input.required = true;
    }
    input.name = feature.name;
    input.id = `feature-${feature.name}`;
    const label = document.createElement("label");
    label.htmlFor = input.id;
    label.textContent = describe(feature);
    const row = document.createElement("div");
    row.className = "field";
    row.append(label, input);
    return row;
  }

  function buildForm() {
    const model = current();
    answer.textContent = "";
    probabilities.replaceChildren();
    chartFigure.hidden = true;
    fields.replaceChildren(...(model ? model.features.map(inputFor) : []));
  }

  // The form's values as the API takes them: numbers as numbers, categories by name.
  function featureValues(model) {
    const values = {};
    for (const feature of model.features) {
      const input = form.elements[feature.name];
      if (feature.kind === "boolean") values[feature.name] = input.checked;
      else if (feature.kind === "category") values[feature.name] = input.value;
      else if (input.value !== "") values[feature.name] = Number(input.value);
    }
    return values;
  }

  function showAnswer(model, prediction) {
    if (model.task === "tabular-regression") {
      const unit = model.target.unit ? ` ${model.target.unit}` : "";
      answer.textContent = `${prediction.value.toFixed(1)}${unit}`;
      answer.dataset.value = String(prediction.value);
      probabilities.replaceChildren();
    } else {
      answer.textContent = `${prediction.label} (${(100 * prediction.probability).toFixed(1)}%)`;
      answer.dataset.value = prediction.label;
      const ranked = Object.entries(prediction.probabilities)
        .map(([label, probability]) => ({ label, probability }))
        .sort((a, b) => b.probability - a.probability);
      dlnd.showPredictions(probabilities, ranked);
    }
  }

  async function predict() {
    const model = current();
    if (!model) return;
    const features = featureValues(model);
    const ticket = ++latest;
    dlnd.showStatus(status, "Asking the model...");
    try {
      const reply = await dlnd.api(dlnd.predictUrl(model), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ features }),
      });
      if (ticket !== latest) return;
      showAnswer(model, reply.predictions[0]);
      dlnd.showStatus(status, `${model.name}: ${model.target.label || model.target.name}`);
      if (model.chart_over && model.task === "tabular-regression") {
        await drawChart(model, features, ticket);
      }
    } catch (error) {
      if (ticket !== latest) return;
      answer.textContent = "";
      delete answer.dataset.value;
      chartFigure.hidden = true;
      dlnd.showStatus(status, error.message, true);
    }
  }

  // ---- The prediction across one feature's range -------------------------------------

  function svg(name, attributes, text) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    if (text !== undefined) element.textContent = text;
    return element;
  }

  async function drawChart(model, features, ticket) {
    const swept = model.features.find((f) => f.name === model.chart_over);
    if (!swept || swept.minimum === undefined) return;
    const xs = [];
    for (let x = swept.minimum; x <= swept.maximum; x += 1) xs.push(x);
    const rows = xs.map((x) => ({ ...features, [swept.name]: x }));
    const reply = await dlnd.api(dlnd.predictUrl(model), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ rows }),
    });
    if (ticket !== latest) return;
    const ys = reply.predictions.map((p) => p.value);
    plot(xs, ys, features[swept.name]);
    caption.textContent = `Predicted ${model.target.label || model.target.name} ` +
      `(${model.target.unit || "model units"}) across the ${describe(swept)}, ` +
      "for the conditions above; the dot is the chosen value.";
    chartFigure.hidden = false;
  }

  function plot(xs, ys, chosen) {
    const { width, height, left, right, top, bottom } = CHART;
    const yMax = Math.max(1, ...ys) * 1.1;
    const yMin = Math.min(0, ...ys);
    const px = (x) => left + (x - xs[0]) / (xs[xs.length - 1] - xs[0] || 1) * (width - left - right);
    const py = (y) => top + (yMax - y) / (yMax - yMin) * (height - top - bottom);
    const axis = { stroke: "#8a93a6", "stroke-width": 1 };
    const parts = [
      svg("line", { x1: left, y1: py(yMin), x2: width - right, y2: py(yMin), ...axis }),
      svg("line", { x1: left, y1: top, x2: left, y2: py(yMin), ...axis }),
    ];
    for (const tick of [yMin, (yMin + yMax) / 2, yMax]) {
      parts.push(svg("text", { x: left - 6, y: py(tick) + 4, "text-anchor": "end", "font-size": 11 },
        tick.toFixed(0)));
    }
    for (const x of xs.filter((_, i) => i % Math.ceil(xs.length / 8) === 0)) {
      parts.push(svg("text", { x: px(x), y: height - 12, "text-anchor": "middle", "font-size": 11 },
        String(x)));
    }
    const points = xs.map((x, i) => `${px(x).toFixed(1)},${py(ys[i]).toFixed(1)}`).join(" ");
    parts.push(svg("polyline", { points, fill: "none", stroke: "#2f6fdf", "stroke-width": 2,
      class: "series" }));
    const at = xs.indexOf(chosen);
    if (at >= 0) {
      parts.push(svg("circle", { cx: px(chosen), cy: py(ys[at]), r: 4, fill: "#b3261e",
        class: "chosen" }));
    }
    chart.replaceChildren(...parts);
    chart.dataset.points = String(xs.length);
    chart.dataset.chosen = String(chosen);
  }

  // ---- Start -------------------------------------------------------------------------

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    predict();
  });
  select.addEventListener("change", () => { buildForm(); predict(); });

  dlnd.addTab("tables", (served) => {
    models = served.filter((m) => m.task.startsWith("tabular-"));
    dlnd.fillSelect(select, models, (m) => m.chart_over);
    buildForm();
    if (!models.length) dlnd.showStatus(status, "No tabular model is being served.", true);
  });
})();
