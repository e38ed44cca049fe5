// The "Write text" tab: a prime, a temperature and a length in; the language model's
// continuation out, shown after the prime as it is written (server-sent events). Same
// seed, same text.
"use strict";

(() => {
  const form = document.getElementById("write-form");
  const select = document.getElementById("write-model");
  const prime = document.getElementById("write-prime");
  const temperature = document.getElementById("write-temperature");
  const temperatureValue = document.getElementById("write-temperature-value");
  const length = document.getElementById("write-length");
  const topK = document.getElementById("write-top-k");
  const seed = document.getElementById("write-seed");
  const status = document.getElementById("write-status");
  const primeEcho = document.getElementById("write-prime-echo");
  const written = document.getElementById("write-continuation");
  let models = [];
  let latest = 0; // the newest request; answers to older ones are dropped

  const current = () => models.find((m) => m.name === select.value);

  function useDefaults() {
    const model = current();
    const defaults = (model && model.defaults) || {};
    if (defaults.prime) prime.value = defaults.prime;
    if (defaults.temperature) temperature.value = defaults.temperature;
    temperatureValue.textContent = temperature.value;
    topK.value = defaults.top_k || "";
  }

  function request() {
    const body = {
      prime: prime.value,
      length: Number(length.value),
      temperature: Number(temperature.value),
      seed: Number(seed.value || 0),
    };
    if (topK.value !== "") body.top_k = Number(topK.value);
    return body;
  }

  // The answer's server-sent events, each {event, data} as it arrives.
  async function* events(response) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const lines = buffer.slice(0, end).split("\n");
        buffer = buffer.slice(end + 2);
        const event = lines.find((line) => line.startsWith("event: "));
        const data = lines.find((line) => line.startsWith("data: "));
        yield { event: event ? event.slice(7) : "message", data: JSON.parse(data.slice(6)) };
      }
    }
  }

  // Ask for the text as a stream, and show each piece as it comes.
  async function generate() {
    const model = current();
    if (!model) return;
    const ticket = ++latest;
    const body = request();
    dlnd.showStatus(status, "Writing...");
    primeEcho.textContent = body.prime;
    written.textContent = "";
    delete written.dataset.done;
    const started = performance.now();
    try {
      const response = await dlnd.request(
        `/v1/models/${encodeURIComponent(model.name)}/generate`,
        {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ ...body, stream: true }),
        },
      );
      if (!response.ok) {
        const reply = await response.json().catch(() => ({}));
        throw new Error(reply.detail || `${response.status} ${response.statusText}`);
      }
      for await (const { event, data } of events(response)) {
        if (ticket !== latest) return;
        if (event === "done") {
          written.dataset.done = "true";
          const seconds = ((performance.now() - started) / 1000).toFixed(2);
          dlnd.showStatus(status, `${model.name}: ${body.length} ${model.input.unit}s in ${seconds} s`);
        } else {
          written.textContent += data.text;
        }
      }
      if (written.dataset.done !== "true") throw new Error("The text stopped before its end.");
    } catch (error) {
      if (ticket !== latest) return;
      dlnd.showStatus(status, error.message, true);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    generate();
  });
  temperature.addEventListener("input", () => { temperatureValue.textContent = temperature.value; });
  select.addEventListener("change", useDefaults);

  dlnd.addTab("write", (served) => {
    models = served.filter((m) => m.task === "text-generation");
    dlnd.fillSelect(select, models);
    useDefaults();
    if (!models.length) dlnd.showStatus(status, "No language model is being served.", true);
  });
})();
