// The page of the dlnd model server: draw a digit, drop an image, see the model's answer.
// Plain browser JavaScript talking to the REST API of the same server; nothing external.
"use strict";

const STROKE_WIDTH = 22; // on the 280x280 canvas; about MNIST's stroke after scaling
const INK_THRESHOLD = 20; // a pixel brighter than this (0-255) is part of the drawing
// MNIST digits fit a 20x20 box centred (by centre of mass) in the 28x28 image.
const DIGIT_BOX_FRACTION = 20 / 28;

let models = [];

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body.detail || `${response.status} ${response.statusText}`);
  }
  return body;
}

function showStatus(element, message, isError = false) {
  element.textContent = message;
  element.classList.toggle("error", isError);
}

function showPredictions(list, predictions) {
  list.replaceChildren(...predictions.map((p) => {
    const item = document.createElement("li");
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = p.label;
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.display = "block";
    fill.style.width = `${(100 * p.probability).toFixed(1)}%`;
    bar.append(fill);
    const prob = document.createElement("span");
    prob.className = "prob";
    prob.textContent = `${(100 * p.probability).toFixed(1)}%`;
    item.append(label, bar, prob);
    return item;
  }));
}

function fillSelect(select, choices, preferred) {
  select.replaceChildren(...choices.map((m) => new Option(m.name, m.name)));
  const best = choices.find(preferred);
  if (best) select.value = best.name;
}

function modelNamed(name) {
  return models.find((m) => m.name === name);
}

// ---- Drawing panel -------------------------------------------------------------------

const canvas = document.getElementById("draw-canvas");
const context = canvas.getContext("2d", { willReadFrequently: true });
const modelView = document.getElementById("model-view");
const drawList = document.getElementById("draw-predictions");
const drawStatus = document.getElementById("draw-status");
const drawSelect = document.getElementById("draw-model");

function clearCanvas() {
  context.fillStyle = "#000";
  context.fillRect(0, 0, canvas.width, canvas.height);
  modelView.getContext("2d").clearRect(0, 0, modelView.width, modelView.height);
  drawList.replaceChildren();
  showStatus(drawStatus, "Draw a digit with the mouse (or a finger).");
}

function inkBox(image, width, height) {
  let minX = width, minY = height, maxX = -1, maxY = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (image[4 * (y * width + x)] > INK_THRESHOLD) {
        minX = Math.min(minX, x); maxX = Math.max(maxX, x);
        minY = Math.min(minY, y); maxY = Math.max(maxY, y);
      }
    }
  }
  return maxX < 0 ? null : { x: minX, y: minY, width: maxX - minX + 1, height: maxY - minY + 1 };
}

function centreOfMass(image, width, height) {
  let mass = 0, sumX = 0, sumY = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const value = image[4 * (y * width + x)];
      mass += value; sumX += value * (x + 0.5); sumY += value * (y + 0.5);
    }
  }
  return mass > 0 ? { x: sumX / mass, y: sumY / mass } : { x: width / 2, y: height / 2 };
}

// The drawing as the model's input, prepared like MNIST: the ink's bounding box scaled to
// fit the digit box (aspect kept), then shifted so its centre of mass is the image centre.
// Returns rows of [0, 1] values, or null when nothing is drawn.
function drawingAsPixels(spec) {
  const box = inkBox(context.getImageData(0, 0, canvas.width, canvas.height).data,
    canvas.width, canvas.height);
  if (!box) return null;
  const scale = DIGIT_BOX_FRACTION * Math.min(spec.width, spec.height) / Math.max(box.width, box.height);
  const w = box.width * scale, h = box.height * scale;
  const small = document.createElement("canvas");
  small.width = spec.width;
  small.height = spec.height;
  const target = small.getContext("2d", { willReadFrequently: true });
  target.imageSmoothingQuality = "high";
  const draw = (dx, dy) => {
    target.fillStyle = "#000";
    target.fillRect(0, 0, spec.width, spec.height);
    target.drawImage(canvas, box.x, box.y, box.width, box.height,
      (spec.width - w) / 2 + dx, (spec.height - h) / 2 + dy, w, h);
    return target.getImageData(0, 0, spec.width, spec.height);
  };
  const centred = draw(0, 0);
  const centre = centreOfMass(centred.data, spec.width, spec.height);
  const shifted = draw(Math.round(spec.width / 2 - centre.x), Math.round(spec.height / 2 - centre.y));
  modelView.width = spec.width;
  modelView.height = spec.height;
  modelView.getContext("2d").putImageData(shifted, 0, 0);
  const rows = [];
  for (let y = 0; y < spec.height; y++) {
    const row = [];
    for (let x = 0; x < spec.width; x++) {
      const value = shifted.data[4 * (y * spec.width + x)] / 255;
      row.push(spec.invert === true ? 1 - value : value);
    }
    rows.push(row);
  }
  return rows;
}

// Live predictions: at most one request in flight; strokes made meanwhile are sent next.
let inFlight = false;
let pending = false;

async function predictDrawing() {
  if (inFlight) { pending = true; return; }
  const model = modelNamed(drawSelect.value);
  if (!model) return;
  const pixels = drawingAsPixels(model.input);
  if (!pixels) return;
  inFlight = true;
  try {
    const answer = await api(`/v1/models/${encodeURIComponent(model.name)}/predict`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ pixels, top_k: model.classes.length }),
    });
    showPredictions(drawList, answer.predictions);
    const best = answer.predictions[0];
    showStatus(drawStatus, `Looks like a ${best.label} (${(100 * best.probability).toFixed(1)}%).`);
  } catch (error) {
    showStatus(drawStatus, error.message, true);
  } finally {
    inFlight = false;
    if (pending) { pending = false; predictDrawing(); }
  }
}

let drawing = false;
let last = null;

function canvasPoint(event) {
  const rect = canvas.getBoundingClientRect();
  return { x: (event.clientX - rect.left) * canvas.width / rect.width,
           y: (event.clientY - rect.top) * canvas.height / rect.height };
}

canvas.addEventListener("pointerdown", (event) => {
  drawing = true;
  canvas.setPointerCapture(event.pointerId);
  last = canvasPoint(event);
});
canvas.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const point = canvasPoint(event);
  context.strokeStyle = "#fff";
  context.lineWidth = STROKE_WIDTH;
  context.lineCap = "round";
  context.lineJoin = "round";
  context.beginPath();
  context.moveTo(last.x, last.y);
  context.lineTo(point.x, point.y);
  context.stroke();
  last = point;
  predictDrawing();
});
for (const type of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(type, () => {
    if (drawing) { drawing = false; predictDrawing(); }
  });
}
document.getElementById("clear-button").addEventListener("click", clearCanvas);
drawSelect.addEventListener("change", predictDrawing);

// ---- Upload panel --------------------------------------------------------------------

const dropZone = document.getElementById("drop-zone");
const fileInput = document.getElementById("file-input");
const preview = document.getElementById("preview");
const uploadList = document.getElementById("upload-predictions");
const uploadStatus = document.getElementById("upload-status");
const uploadSelect = document.getElementById("upload-model");
let lastFile = null;

async function classifyFile(file) {
  lastFile = file;
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  document.getElementById("drop-hint").hidden = true;
  const form = new FormData();
  form.append("file", file);
  form.append("top_k", "5");
  showStatus(uploadStatus, "Classifying...");
  try {
    const answer = await api(`/v1/models/${encodeURIComponent(uploadSelect.value)}/predict`,
      { method: "POST", body: form });
    showPredictions(uploadList, answer.predictions);
    showStatus(uploadStatus, `${answer.model}: ${answer.predictions[0].label}`);
  } catch (error) {
    uploadList.replaceChildren();
    showStatus(uploadStatus, error.message, true);
  }
}

fileInput.addEventListener("change", () => {
  if (fileInput.files.length) classifyFile(fileInput.files[0]);
});
dropZone.addEventListener("dragover", (event) => {
  event.preventDefault();
  dropZone.classList.add("dragging");
});
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("dragging");
  if (event.dataTransfer.files.length) classifyFile(event.dataTransfer.files[0]);
});
uploadSelect.addEventListener("change", () => { if (lastFile) classifyFile(lastFile); });

// ---- Model list ----------------------------------------------------------------------

function formatMetric(key, value) {
  if (/accuracy/.test(key)) return `${key} ${(100 * value).toFixed(2)}%`;
  return `${key} ${Number.isInteger(value) ? value : value.toPrecision(4)}`;
}

function describeMetrics(metrics) {
  const final = (metrics && metrics.final) || {};
  return Object.entries(final)
    .filter(([, value]) => typeof value === "number")
    .map(([key, value]) => formatMetric(key, value))
    .join(", ");
}

function fillTable() {
  const body = document.querySelector("#models-table tbody");
  body.replaceChildren(...models.map((m) => {
    const row = document.createElement("tr");
    const input = m.input ? `${m.input.channels}x${m.input.height}x${m.input.width} ${m.input.color || ""}` : "";
    const cells = [m.name, m.task, input, (m.classes || []).join(", "), describeMetrics(m.metrics)];
    row.append(...cells.map((text, i) => {
      const cell = document.createElement("td");
      cell.textContent = text;
      if (i === 3) cell.className = "classes";
      return cell;
    }));
    return row;
  }));
}

async function start() {
  clearCanvas();
  try {
    models = (await api("/v1/models")).models;
  } catch (error) {
    showStatus(drawStatus, `Cannot list the models: ${error.message}`, true);
    return;
  }
  const classifiers = models.filter((m) => m.task === "image-classification");
  const greyscale = classifiers.filter((m) => m.input.channels === 1);
  fillSelect(drawSelect, greyscale, (m) => /mnist/.test(m.name) && !/fashion/.test(m.name));
  fillSelect(uploadSelect, classifiers, (m) => m.input.channels === 3);
  if (!greyscale.length) showStatus(drawStatus, "No greyscale image model is being served.", true);
  if (!classifiers.length) showStatus(uploadStatus, "No image classifier is being served.", true);
  fillTable();
  document.body.dataset.ready = "true";
}

start();
