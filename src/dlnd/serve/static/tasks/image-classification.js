// The "Images" tab: draw a digit for a greyscale model, drop a photo for any image classifier.
"use strict";

(() => {
  const STROKE_WIDTH = 22; // on the 280x280 canvas; about MNIST's stroke after scaling
  const INK_THRESHOLD = 20; // a pixel brighter than this (0-255) is part of the drawing
  // MNIST digits fit a 20x20 box centred (by centre of mass) in the 28x28 image.
  const DIGIT_BOX_FRACTION = 20 / 28;

  let models = [];
  const modelNamed = (name) => models.find((m) => m.name === name);

  // ---- Drawing panel -----------------------------------------------------------------

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
    dlnd.showStatus(drawStatus, "Draw a digit with the mouse (or a finger).");
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
      const answer = await dlnd.api(dlnd.predictUrl(model), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ pixels, top_k: model.classes.length }),
      });
      dlnd.showPredictions(drawList, answer.predictions);
      const best = answer.predictions[0];
      dlnd.showStatus(drawStatus, `Looks like a ${best.label} (${(100 * best.probability).toFixed(1)}%).`);
    } catch (error) {
      dlnd.showStatus(drawStatus, error.message, true);
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

  // ---- Upload panel ------------------------------------------------------------------

  // A photo bigger than this (bytes or pixels), or in a format the server does not take,
  // is resized in the browser and sent as a JPEG: a phone photo of 10 MB still works, and
  // the server never decodes more than it needs.
  const UPLOAD_MAX_BYTES = 2 * 1024 * 1024;
  const UPLOAD_MAX_SIDE = 2048;
  const SERVER_TYPES = ["image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp"];

  async function uploadable(file) {
    let bitmap;
    try {
      bitmap = await createImageBitmap(file); // upright: EXIF orientation applied
    } catch {
      return { blob: file, note: "" }; // the browser cannot read it; the server will say why
    }
    const { width, height } = bitmap;
    const side = Math.max(width, height);
    if (file.size <= UPLOAD_MAX_BYTES && side <= UPLOAD_MAX_SIDE && SERVER_TYPES.includes(file.type)) {
      bitmap.close();
      return { blob: file, note: "" };
    }
    const scale = Math.min(1, UPLOAD_MAX_SIDE / side);
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    const context = canvas.getContext("2d");
    context.imageSmoothingQuality = "high";
    context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
    const note = ` (resized in the browser from ${width}x${height}, ` +
      `${(file.size / 1048576).toFixed(1)} MB, to ${canvas.width}x${canvas.height})`;
    return { blob, note };
  }

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
    dlnd.showStatus(uploadStatus, "Classifying...");
    try {
      const { blob, note } = await uploadable(file);
      const form = new FormData();
      form.append("file", blob, note ? "photo.jpg" : file.name);
      form.append("top_k", "5");
      const answer = await dlnd.api(dlnd.predictUrl(modelNamed(uploadSelect.value)),
        { method: "POST", body: form });
      dlnd.showPredictions(uploadList, answer.predictions);
      dlnd.showStatus(uploadStatus, `${answer.model}: ${answer.predictions[0].label}${note}`);
    } catch (error) {
      uploadList.replaceChildren();
      dlnd.showStatus(uploadStatus, error.message, true);
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

  // ---- Start -------------------------------------------------------------------------

  dlnd.addTab("images", (served) => {
    clearCanvas();
    models = served.filter((m) => m.task === "image-classification");
    const greyscale = models.filter((m) => m.input.channels === 1);
    dlnd.fillSelect(drawSelect, greyscale, (m) => /mnist/.test(m.name) && !/fashion/.test(m.name));
    dlnd.fillSelect(uploadSelect, models, (m) => m.input.channels === 3);
    if (!greyscale.length) dlnd.showStatus(drawStatus, "No greyscale image model is being served.", true);
    if (!models.length) dlnd.showStatus(uploadStatus, "No image classifier is being served.", true);
  });
})();
