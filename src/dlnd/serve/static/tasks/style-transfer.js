// The "Style transfer" tab: drop a photo, pick a style (a served style-transfer model), watch
// the photo's pixels being optimised (a job the page polls) and get the painted photo.
"use strict";

(() => {
  const POLL_MS = 400;

  let models = [];
  const select = document.getElementById("style-model");
  const artwork = document.getElementById("style-artwork");
  const size = document.getElementById("style-size");
  const steps = document.getElementById("style-steps");
  const dropZone = document.getElementById("style-drop");
  const fileInput = document.getElementById("style-file");
  const photo = document.getElementById("style-photo");
  const progress = document.getElementById("style-progress");
  const result = document.getElementById("style-result");
  const status = document.getElementById("style-status");
  let lastFile = null;
  let running = 0; // the number of the latest request: older ones stop polling

  const chosen = () => models.find((m) => m.name === select.value);
  const url = (model, endpoint) => `/v1/models/${encodeURIComponent(model.name)}/${endpoint}`;

  function showArtwork() {
    const model = chosen();
    if (!model) return;
    artwork.src = `data:image/png;base64,${model.style_image}`;
    artwork.hidden = false;
  }

  function showJob(job) {
    progress.max = job.steps;
    progress.value = job.step;
    const picture = job.image || job.preview;
    if (picture) {
      result.src = `data:image/png;base64,${picture}`;
      result.hidden = false;
    }
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function paint(file) {
    const model = chosen();
    if (!model || !file) return;
    lastFile = file;
    const mine = ++running;
    photo.src = URL.createObjectURL(file);
    photo.hidden = false;
    document.getElementById("style-hint").hidden = true;
    result.hidden = true;
    result.removeAttribute("data-done");
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("size", size.value);
    form.append("steps", steps.value);
    try {
      let job = await dlnd.api(url(model, "stylise"), { method: "POST", body: form });
      while (job.state === "queued" || job.state === "running") {
        showJob(job);
        dlnd.showStatus(status, job.state === "queued" ? "Waiting for the painter..." :
          `Step ${job.step} of ${job.steps} (${job.seconds.toFixed(1)} s)`);
        await sleep(POLL_MS);
        if (mine !== running) return;
        job = await dlnd.api(url(model, "job"), {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ job: job.job }),
        });
      }
      if (job.state === "failed") throw new Error(job.detail);
      showJob(job);
      result.dataset.done = "true";
      dlnd.showStatus(status, `${model.name}: ${job.width}x${job.height}, ` +
        `${job.steps} steps in ${job.seconds.toFixed(1)} s.`);
    } catch (error) {
      if (mine === running) dlnd.showStatus(status, error.message, true);
    }
  }

  fileInput.addEventListener("change", () => {
    if (fileInput.files.length) paint(fileInput.files[0]);
  });
  dropZone.addEventListener("dragover", (event) => {
    event.preventDefault();
    dropZone.classList.add("dragging");
  });
  dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropZone.classList.remove("dragging");
    if (event.dataTransfer.files.length) paint(event.dataTransfer.files[0]);
  });
  select.addEventListener("change", () => { showArtwork(); if (lastFile) paint(lastFile); });

  dlnd.addTab("style", (served) => {
    models = served.filter((m) => m.task === "style-transfer");
    if (!models.length) {
      dlnd.showStatus(status, "No style-transfer model is being served.", true);
      return;
    }
    dlnd.fillSelect(select, models);
    const { limits, defaults } = models[0];
    [size.min, size.max, size.value] = [limits.size[0], limits.size[1], defaults.size];
    [steps.max, steps.value] = [limits.steps[1], defaults.steps];
    showArtwork();
    dlnd.showStatus(status, "Drop a photo to paint it in the chosen style.");
  });
})();
