// The theme switch, and the CSRF header of htmx requests. The theme is the system's
// preference until the visitor picks light or dark, which is remembered in this browser.
// Loaded in <head> so the chosen theme applies before the first paint; the button is wired
// once the page is parsed.
(function () {
  "use strict";
  var KEY = "cortexlayer-theme";
  var root = document.documentElement;
  var saved = null;
  try { saved = localStorage.getItem(KEY); } catch (e) { saved = null; }
  if (saved === "light" || saved === "dark") root.dataset.theme = saved;

  function current() {
    if (root.dataset.theme) return root.dataset.theme;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  function label(button) {
    var next = current() === "dark" ? "light" : "dark";
    button.textContent = next === "dark" ? "Dark theme" : "Light theme";
    button.setAttribute("aria-label", "Switch to the " + next + " theme");
  }
  // htmx requests carry the page's CSRF token (forms carry it as a hidden field).
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && meta.content) event.detail.headers["X-CSRF-Token"] = meta.content;
  });
  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("theme-toggle");
    if (!button) return;
    label(button);
    button.addEventListener("click", function () {
      var next = current() === "dark" ? "light" : "dark";
      root.dataset.theme = next;
      try { localStorage.setItem(KEY, next); } catch (e) { /* private mode: not remembered */ }
      label(button);
      document.dispatchEvent(new Event("cortexlayer-theme"));
    });
  });
})();

// Knowledge uploads: each chosen or dropped file goes on its own request, with a progress
// bar, its outcome in words and a retry; the documents table refreshes when each lands.
// Without this script the form posts the files together.
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) return;
  var input = document.getElementById("files");
  var zone = document.getElementById("dropzone");
  var list = document.getElementById("upload-list");
  var csrf = form.querySelector('input[name="csrf"]').value;
  var submit = form.querySelector('button[type="submit"]');
  if (submit) submit.hidden = true;
  var hint = document.getElementById("files-hint");
  if (hint) hint.textContent += " Each file uploads as soon as you choose or drop it.";

  function retry(item, file) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "button button-quiet";
    b.textContent = "Retry";
    b.setAttribute("aria-label", "Retry " + file.name);
    b.addEventListener("click", function () { item.remove(); send(file); });
    item.appendChild(b);
  }

  function send(file) {
    var item = document.createElement("li");
    var name = document.createElement("span");
    name.className = "upload-name";
    name.textContent = file.name;
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Uploading " + file.name);
    var status = document.createElement("span");
    status.className = "upload-status";
    status.textContent = "Uploading…";
    item.appendChild(name);
    item.appendChild(bar);
    item.appendChild(status);
    list.appendChild(item);

    var data = new FormData();
    data.append("file", file, file.name);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) bar.value = Math.round((e.loaded * 100) / e.total);
    };
    xhr.onload = function () {
      var ok = xhr.status >= 200 && xhr.status < 300;
      if (ok) bar.value = 100;
      item.className = ok ? "done" : "failed";
      status.textContent = xhr.responseText || (ok ? "Uploaded." : "The upload failed.");
      if (!ok) retry(item, file);
      document.body.dispatchEvent(new Event("documents-changed"));
    };
    xhr.onerror = function () {
      item.className = "failed";
      status.textContent = "The upload did not reach the server.";
      retry(item, file);
    };
    xhr.send(data);
  }

  function sendAll(files) {
    for (var i = 0; i < files.length; i++) send(files[i]);
  }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    sendAll(input.files);
    input.value = "";
  });
  input.addEventListener("change", function () {
    sendAll(input.files);
    input.value = "";
  });
  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (e) {
      e.preventDefault();
      zone.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function (e) {
      e.preventDefault();
      zone.classList.remove("dragging");
    });
  });
  zone.addEventListener("drop", function (e) {
    if (e.dataTransfer && e.dataTransfer.files) sendAll(e.dataTransfer.files);
  });
});

// The bot's test console: asks with server-sent events and renders the answer as it
// streams, then what it rests on. Built with textContent only: nothing the bot or a document
// says becomes markup. Without this script the form posts and the page shows the answer.
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var form = document.getElementById("console-form");
  if (!form || !window.fetch || !window.TextDecoder) return;
  var output = document.getElementById("console-output");
  var conversation = document.getElementById("console-conversation");
  var again = document.getElementById("console-new");
  var message = document.getElementById("console-message");

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fact(list, term, value) {
    var d = el("div");
    d.appendChild(el("dt", "", term));
    d.appendChild(el("dd", "", value));
    list.appendChild(d);
  }
  function finish(turn, answer, view) {
    answer.textContent = view.answer;
    var facts = el("dl", "details console-facts");
    fact(facts, "Confidence", view.confidence.toFixed(2));
    fact(facts, "Abstained", view.abstained ? "Yes: the documents do not answer this" : "No");
    fact(facts, "Model", view.model);
    fact(facts, "Tokens", view.usage.embedding_tokens + " embedded, " + view.usage.prompt_tokens + " prompt, " + view.usage.completion_tokens + " completion");
    fact(facts, "Latency", view.latency_ms + " ms");
    turn.appendChild(facts);
    if (view.citations.length) {
      var wrap = el("div", "table-wrap");
      var table = el("table", "table");
      table.appendChild(el("caption", "", "Sources"));
      var head = el("thead");
      var hr = el("tr");
      ["#", "Document", "Section", "Score"].forEach(function (h) {
        var th = el("th", "", h);
        th.scope = "col";
        hr.appendChild(th);
      });
      head.appendChild(hr);
      table.appendChild(head);
      var body = el("tbody");
      view.citations.forEach(function (c) {
        var tr = el("tr");
        var section = c.section.join(" › ") + (c.page ? " · page " + c.page : "");
        [String(c.index), c.title, section, c.score.toFixed(3)].forEach(function (v) {
          tr.appendChild(el("td", "", v));
        });
        body.appendChild(tr);
      });
      table.appendChild(body);
      wrap.appendChild(table);
      turn.appendChild(wrap);
    }
    conversation.value = view.conversation_id;
    again.hidden = false;
  }

  again.addEventListener("click", function () {
    conversation.value = "";
    output.textContent = "";
    again.hidden = true;
    message.focus();
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = message.value.trim();
    if (!text) return;
    var turn = el("div", "console-turn");
    var q = el("p", "console-question");
    q.appendChild(el("strong", "", "Customer: "));
    q.appendChild(document.createTextNode(text));
    turn.appendChild(q);
    var answer = el("div", "console-answer", "…");
    answer.setAttribute("aria-busy", "true");
    turn.appendChild(answer);
    output.appendChild(turn);
    var button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    var streamed = "";
    fetch(form.action, {
      method: "POST",
      headers: {
        "Accept": "text/event-stream",
        "Content-Type": "application/x-www-form-urlencoded",
        "X-CSRF-Token": form.querySelector('input[name="csrf"]').value
      },
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin"
    }).then(function (response) {
      if (!response.ok || !response.body) {
        return response.text().then(function () {
          throw new Error("The console could not ask (" + response.status + "). Reload the page and try again.");
        });
      }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function handle(block) {
        var event = "message", data = "";
        block.split("\n").forEach(function (line) {
          if (line.indexOf("event:") === 0) event = line.slice(6).trim();
          else if (line.indexOf("data:") === 0) data += line.slice(5).trim();
        });
        if (!data) return;
        var payload = JSON.parse(data);
        if (event === "token") {
          streamed += payload.text;
          answer.textContent = streamed;
        } else if (event === "done") {
          finish(turn, answer, payload);
        } else if (event === "error") {
          throw new Error(payload.error.message);
        }
      }
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) return;
          buffer += decoder.decode(chunk.value, { stream: true });
          var parts = buffer.split("\n\n");
          buffer = parts.pop();
          parts.forEach(handle);
          return pump();
        });
      }
      return pump();
    }).catch(function (err) {
      answer.textContent = "";
      answer.appendChild(el("p", "field-error", err.message || "The console could not ask."));
    }).then(function () {
      answer.removeAttribute("aria-busy");
      button.disabled = false;
      message.value = "";
      message.focus();
    });
  });
});

// Copy buttons: data-copy names the element whose text is copied; the button says it worked.
document.addEventListener("click", function (event) {
  "use strict";
  var button = event.target.closest ? event.target.closest("[data-copy]") : null;
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(function () {
    var before = button.textContent;
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = before; }, 2000);
  });
});

// Colour swatches (data-color) and the widget builder's live preview: colours are set through
// the CSSOM, which the page's CSP allows (no inline style attributes).
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  function ink(hex) {
    // White or near-black text, whichever contrasts more with the colour (WCAG luminance).
    var n = parseInt(hex.slice(1), 16);
    var channel = function (v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    var l = 0.2126 * channel((n >> 16) & 255) + 0.7152 * channel((n >> 8) & 255) + 0.0722 * channel(n & 255);
    return (1.05 / (l + 0.05)) >= ((l + 0.05) / 0.05) ? "#ffffff" : "#111111";
  }
  var swatches = document.querySelectorAll("[data-color]");
  for (var i = 0; i < swatches.length; i++) {
    var c = swatches[i].getAttribute("data-color");
    if (/^#[0-9a-fA-F]{6}$/.test(c)) swatches[i].style.setProperty("background", c);
  }
  var preview = document.getElementById("widget-preview");
  if (!preview) return;
  var color = document.getElementById("wk-color");
  var title = document.getElementById("wk-title");
  var position = document.getElementById("wk-position");
  var head = document.getElementById("wp-title");
  function update() {
    var value = /^#[0-9a-fA-F]{6}$/.test(color.value) ? color.value : "#2563eb";
    preview.style.setProperty("--wp-color", value);
    preview.style.setProperty("--wp-ink", ink(value));
    head.textContent = title.value.trim() || "Ask us anything";
    preview.setAttribute("data-position", position.value);
    preview.setAttribute("aria-label", "Preview of the widget: " + head.textContent + ", bottom " + position.value);
  }
  [color, title, position].forEach(function (el) {
    el.addEventListener("input", update);
    el.addEventListener("change", update);
  });
  update();
});

// The Overview's chart: drawn with uPlot from the table beside it (the one source of the
// numbers, which screen readers read), one line per channel.
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var holder = document.getElementById("activity-chart");
  var table = document.getElementById("activity-table");
  if (!holder || !table || !window.uPlot) return;
  var heads = table.querySelectorAll("thead th");
  var names = [];
  for (var i = 1; i < heads.length - 1; i++) names.push(heads[i].textContent);
  var rows = table.querySelectorAll("tbody tr");
  var xs = [];
  var ys = names.map(function () { return []; });
  for (var r = 0; r < rows.length; r++) {
    xs.push(Date.parse(rows[r].getAttribute("data-day") + "T00:00:00Z") / 1000);
    var cells = rows[r].querySelectorAll("td");
    for (var c = 0; c < names.length; c++) ys[c].push(Number(cells[c].textContent));
  }
  var palette = ["#2563eb", "#16a34a", "#db2777", "#ea580c", "#7c3aed", "#0891b2", "#ca8a04", "#4b5563", "#dc2626"];
  // A canvas cannot read light-dark(): resolve the theme's colours through an element.
  function resolve(name, fallback) {
    var probe = document.createElement("span");
    probe.style.setProperty("color", "var(" + name + ")");
    probe.hidden = true;
    document.body.appendChild(probe);
    var value = getComputedStyle(probe).color || fallback;
    probe.remove();
    return value;
  }
  var plot = null;
  function draw() {
    var ink = resolve("--color-muted", "#545b66");
    var grid = resolve("--color-border", "#d8dce2");
    var axis = { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
    var opts = {
      width: Math.max(260, holder.clientWidth),
      height: 220,
      scales: { x: { time: true } },
      axes: [axis, Object.assign({}, axis, { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] })],
      series: [{}].concat(names.map(function (n, k) {
        return { label: n, stroke: palette[k % palette.length], width: 2, points: { show: true } };
      }))
    };
    if (plot) plot.destroy();
    plot = new window.uPlot(opts, [xs].concat(ys), holder);
  }
  draw();
  document.addEventListener("cortexlayer-theme", draw);
  if (window.matchMedia) {
    var media = window.matchMedia("(prefers-color-scheme: dark)");
    if (media.addEventListener) media.addEventListener("change", draw);
  }
  window.addEventListener("resize", function () {
    if (plot) plot.setSize({ width: Math.max(260, holder.clientWidth), height: 220 });
  });
});
