// The "Generated images" tab: digits (or pictures) from a GAN's generator by seed, and a walk
// on the straight line between the latent vectors of two seeds.
"use strict";

(() => {
  const GRID_IMAGES = 16;
  const WALK_STEPS = 10;

  let models = [];
  const select = document.getElementById("generate-model");
  const seed = document.getElementById("generate-seed");
  const seedValue = document.getElementById("generate-seed-value");
  const grid = document.getElementById("generate-grid");
  const gridStatus = document.getElementById("generate-status");
  const walkStart = document.getElementById("walk-start");
  const walkEnd = document.getElementById("walk-end");
  const strip = document.getElementById("walk-strip");
  const walkStatus = document.getElementById("walk-status");

  function generateUrl(model) {
    return `/v1/models/${encodeURIComponent(model.name)}/generate`;
  }

  function images(answer) {
    return answer.images.map((png, i) => {
      const image = document.createElement("img");
      image.src = `data:image/png;base64,${png}`;
      image.alt = `generated image ${i + 1}`;
      image.width = answer.width;
      image.height = answer.height;
      return image;
    });
  }

  async function generate(body) {
    const model = models.find((m) => m.name === select.value);
    return dlnd.api(generateUrl(model), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  // At most one grid request in flight; a slider moved meanwhile sends its last value next.
  let inFlight = false;
  let pending = false;

  async function showGrid() {
    if (inFlight) { pending = true; return; }
    inFlight = true;
    const asked = Number(seed.value);
    seedValue.textContent = String(asked);
    try {
      const answer = await generate({ n: GRID_IMAGES, seed: asked });
      grid.replaceChildren(...images(answer));
      grid.dataset.seed = String(asked);
      dlnd.showStatus(gridStatus, `${answer.model}: ${answer.images.length} images of seed ${asked}.`);
    } catch (error) {
      dlnd.showStatus(gridStatus, error.message, true);
    } finally {
      inFlight = false;
      if (pending) { pending = false; showGrid(); }
    }
  }

  async function showWalk() {
    const ends = [Number(walkStart.value), Number(walkEnd.value)];
    try {
      const answer = await generate({ interpolate: ends, steps: WALK_STEPS });
      strip.replaceChildren(...images(answer));
      strip.dataset.ends = ends.join("-");
      dlnd.showStatus(walkStatus, `From seed ${ends[0]} to seed ${ends[1]} in ${WALK_STEPS} steps.`);
    } catch (error) {
      strip.replaceChildren();
      dlnd.showStatus(walkStatus, error.message, true);
    }
  }

  seed.addEventListener("input", showGrid);
  document.getElementById("generate-random").addEventListener("click", () => {
    seed.value = String(Math.floor(Math.random() * (Number(seed.max) + 1)));
    showGrid();
  });
  document.getElementById("walk-button").addEventListener("click", showWalk);
  select.addEventListener("change", () => { showGrid(); showWalk(); });

  dlnd.addTab("generation", (served) => {
    models = served.filter((m) => m.task === "image-generation");
    if (!models.length) {
      dlnd.showStatus(gridStatus, "No image generator is being served.", true);
      return;
    }
    dlnd.fillSelect(select, models);
    showGrid();
    showWalk();
  });
})();
