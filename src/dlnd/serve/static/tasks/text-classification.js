// The "Reviews" tab: the sentiment of a review, updated as it is typed (a short pause
// after the last key sends it; answers to older texts are dropped).
"use strict";

(() => {
  const PAUSE_MS = 250;

  const select = document.getElementById("review-model");
  const text = document.getElementById("review-text");
  const status = document.getElementById("review-status");
  const answer = document.getElementById("review-answer");
  const predictions = document.getElementById("review-predictions");
  let models = [];
  let timer = null;
  let latest = 0;

  const current = () => models.find((m) => m.name === select.value);

  function clear() {
    answer.textContent = "";
    delete answer.dataset.label;
    predictions.replaceChildren();
  }

  async function classify() {
    const model = current();
    const ticket = ++latest;
    if (!model || !text.value.trim()) {
      clear();
      dlnd.showStatus(status, model ? "Type a review." : "No text classifier is being served.",
        !model);
      return;
    }
    try {
      const reply = await dlnd.api(dlnd.predictUrl(model), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ text: text.value }),
      });
      if (ticket !== latest) return;
      const best = reply.predictions[0];
      answer.textContent = `${best.label} (${(100 * best.probability).toFixed(1)}%)`;
      answer.dataset.label = best.label;
      dlnd.showPredictions(predictions, reply.predictions);
      const read = reply.truncated ? `the first ${model.max_tokens} of ${reply.tokens}` : reply.tokens;
      dlnd.showStatus(status, `${model.name} read ${read} words`);
    } catch (error) {
      if (ticket !== latest) return;
      clear();
      dlnd.showStatus(status, error.message, true);
    }
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(classify, PAUSE_MS);
  }

  text.addEventListener("input", later);
  select.addEventListener("change", classify);

  dlnd.addTab("reviews", (served) => {
    models = served.filter((m) => m.task === "text-classification");
    dlnd.fillSelect(select, models);
    classify();
  });
})();
