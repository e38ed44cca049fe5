// The "Chat" tab: a conversation with a chatbot model, and the attention heat map of its
// last reply (rows: the words it wrote; columns: the words of your line it read).
"use strict";

(() => {
  const HISTORY_TURNS = 6; // turns sent along as the conversation so far
  const select = document.getElementById("chat-model");
  const form = document.getElementById("chat-form");
  const message = document.getElementById("chat-message");
  const sample = document.getElementById("chat-sample");
  const log = document.getElementById("chat-log");
  const status = document.getElementById("chat-status");
  const heatmap = document.getElementById("chat-heatmap");
  let models = [];
  let history = [];

  const current = () => models.find((m) => m.name === select.value);
  // Punctuation words of the vocabulary ("||period||") shown as their marks.
  const MARKS = { return: "\u21b5", period: ".", comma: ",", quotation_mark: "\"",
    semicolon: ";", exclamation_mark: "!", question_mark: "?", left_parentheses: "(",
    right_parentheses: ")", dash: "-" };
  const shown = (word) => {
    const match = /^\|\|(\w+)\|\|$/.exec(word);
    return match && MARKS[match[1]] ? MARKS[match[1]] : word;
  };

  function say(who, text) {
    const item = document.createElement("li");
    item.className = who;
    item.textContent = text;
    log.append(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function cell(tag, text) {
    const element = document.createElement(tag);
    element.textContent = text;
    return element;
  }

  function drawHeatmap(reply) {
    const head = document.createElement("tr");
    head.append(cell("th", ""), ...reply.words_in.map((w) => cell("th", shown(w))));
    const rows = reply.attention.map((weights, i) => {
      const row = document.createElement("tr");
      row.append(cell("th", shown(reply.words_out[i])));
      for (const [j, weight] of weights.entries()) {
        const td = cell("td", "");
        td.style.background = `rgba(47, 111, 223, ${weight.toFixed(3)})`;
        td.title = `${shown(reply.words_out[i])} \u2192 ${shown(reply.words_in[j])}: ${weight.toFixed(2)}`;
        row.append(td);
      }
      return row;
    });
    const thead = document.createElement("thead");
    thead.append(head);
    const tbody = document.createElement("tbody");
    tbody.append(...rows);
    heatmap.replaceChildren(thead, tbody);
    heatmap.dataset.rows = String(rows.length);
  }

  async function send() {
    const model = current();
    const text = message.value.trim();
    if (!model || !text) return;
    say("you", text);
    message.value = "";
    dlnd.showStatus(status, "Thinking...");
    const started = performance.now();
    try {
      const reply = await dlnd.api(`/v1/models/${encodeURIComponent(model.name)}/reply`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          message: text,
          history: history.slice(-HISTORY_TURNS),
          seed: Math.floor(Math.random() * 1e9),
          temperature: sample.checked ? 0.8 : 0,
          attention: true,
        }),
      });
      say("bot", reply.reply || "(says nothing)");
      history.push(text, reply.reply);
      drawHeatmap(reply);
      dlnd.showStatus(status, `${model.name}: replied in ${Math.round(performance.now() - started)} ms`);
    } catch (error) {
      dlnd.showStatus(status, error.message, true);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  select.addEventListener("change", () => {
    history = [];
    log.replaceChildren();
    heatmap.replaceChildren();
  });

  dlnd.addTab("chat", (served) => {
    models = served.filter((m) => m.task === "chat");
    dlnd.fillSelect(select, models);
    if (!models.length) dlnd.showStatus(status, "No chatbot is being served.", true);
  });
})();
