// The page of the dlnd model server: one tab per kind of served model, and the model list.
// Plain browser JavaScript talking to the REST API of the same server; nothing external.
// Each task's tab lives in its own script under /static/tasks/, which the server includes
// only when a model of that task is served; it registers itself with dlnd.addTab.
"use strict";

const dlnd = (() => {
  const tabStarters = new Map();
  let apiKey = sessionStorage.getItem("dlnd-api-key") || "";

  // fetch with this server's API key, if one was given.
  function request(path, options = {}) {
    const headers = new Headers(options.headers || {});
    if (apiKey) headers.set("Authorization", `Bearer ${apiKey}`);
    return fetch(path, { ...options, headers });
  }

  async function api(path, options = {}) {
    const response = await request(path, options);
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(body.detail || `${response.status} ${response.statusText}`);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function showStatus(element, message, isError = false) {
    element.textContent = message;
    element.classList.toggle("error", isError);
  }

  // A list of labelled probability bars, most probable first.
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
    const best = choices.find(preferred || (() => false));
    if (best) select.value = best.name;
  }

  function predictUrl(model) {
    return `/v1/models/${encodeURIComponent(model.name)}/predict`;
  }

  // A task script calls addTab(tab, start); start(models) runs once the model list is known.
  function addTab(tab, start) {
    tabStarters.set(tab, start);
  }

  function showTab(tab) {
    for (const button of document.querySelectorAll("#tabs [role=tab]")) {
      const selected = button.dataset.tab === tab;
      button.setAttribute("aria-selected", String(selected));
      document.getElementById(button.getAttribute("aria-controls")).hidden = !selected;
    }
  }

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

  function describeInput(m) {
    if (m.features) return m.features.map((f) => f.name).join(", ");
    if (m.input && m.input.unit) return `text: ${m.input.vocabulary_size} known ${m.input.unit}s`;
    if (m.input && m.input.channels) {
      return `${m.input.channels}x${m.input.height}x${m.input.width} ${m.input.color || ""}`;
    }
    return "";
  }

  function describeOutputs(m) {
    if (m.classes) return m.classes.join(", ");
    if (m.target && m.target.classes) return m.target.classes.join(", ");
    if (m.target) return [m.target.label || m.target.name, m.target.unit].filter(Boolean).join(", ");
    return "";
  }

  function fillTable(models) {
    const body = document.querySelector("#models-table tbody");
    body.replaceChildren(...models.map((m) => {
      const row = document.createElement("tr");
      const cells = [m.name, m.task, describeInput(m), describeOutputs(m), describeMetrics(m.metrics)];
      row.append(...cells.map((text, i) => {
        const cell = document.createElement("td");
        cell.textContent = text;
        if (i === 3) cell.className = "classes";
        return cell;
      }));
      return row;
    }));
  }

  // With an API key required, ask for it once per browser session.
  async function listModels(status) {
    for (;;) {
      try {
        return (await api("/v1/models")).models;
      } catch (error) {
        if (error.status !== 401) throw error;
        showStatus(status, "This server needs an API key.", true);
        const key = window.prompt("API key of this server:");
        if (!key) throw error;
        apiKey = key;
        sessionStorage.setItem("dlnd-api-key", key);
      }
    }
  }

  async function start() {
    const status = document.getElementById("page-status");
    const buttons = [...document.querySelectorAll("#tabs [role=tab]")];
    for (const button of buttons) {
      button.addEventListener("click", () => showTab(button.dataset.tab));
    }
    if (buttons.length) showTab(buttons[0].dataset.tab);
    let models;
    try {
      models = await listModels(status);
    } catch (error) {
      showStatus(status, `Cannot list the models: ${error.message}`, true);
      return;
    }
    fillTable(models);
    for (const startTab of tabStarters.values()) startTab(models);
    document.body.dataset.ready = "true";
  }

  document.addEventListener("DOMContentLoaded", start);
  return { api, addTab, fillSelect, predictUrl, request, showPredictions, showStatus };
})();
