/*! CortexLayer chat widget. No dependencies, no build step.
 *
 * Paste before </body>:
 *   <script src="https://YOUR-CORTEXLAYER/widget.js" data-key="wk_…" async></script>
 *
 * The bubble opens a chat that streams cited answers from the tenant's bot. The conversation
 * survives page loads (an anonymous visitor id and the conversation id are kept in this
 * site's localStorage); each answer can be rated helpful or not. Everything lives in a shadow
 * root, so the page's styles and the widget's do not mix. Server text is only ever set as
 * text, never as HTML.
 */
(function () {
  "use strict";

  var script =
    document.currentScript ||
    document.querySelector('script[data-key][src*="widget.js"]');
  if (!script || !script.getAttribute("data-key")) return;
  var KEY = script.getAttribute("data-key");
  var BASE = new URL(script.src, location.href).origin;
  if (document.getElementById("cortexlayer-widget")) return;

  // ----- storage ------------------------------------------------------------------------------
  var store = {
    get: function (name) {
      try { return localStorage.getItem("cortexlayer:" + KEY + ":" + name); } catch (e) { return null; }
    },
    set: function (name, value) {
      try { localStorage.setItem("cortexlayer:" + KEY + ":" + name, value); } catch (e) { /* private mode */ }
    },
  };
  function newVisitorId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  var visitorId = store.get("visitor");
  if (!visitorId || !/^[A-Za-z0-9_-]{8,64}$/.test(visitorId)) {
    visitorId = newVisitorId();
    store.set("visitor", visitorId);
  }
  var conversationId = store.get("conversation");

  // ----- elements -----------------------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }

  var host = el("div", { id: "cortexlayer-widget" });
  var root = host.attachShadow({ mode: "open" });
  var style = el("style", {
    text:
      ":host{all:initial}" +
      "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}" +
      ".cl-bubble{position:fixed;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;cursor:pointer;" +
      "background:var(--cl-color);color:var(--cl-ink);box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483646;display:flex;align-items:center;justify-content:center}" +
      ".cl-bubble:focus-visible,.cl-panel button:focus-visible,.cl-panel textarea:focus-visible{outline:3px solid #111;outline-offset:2px}" +
      ".cl-panel{position:fixed;bottom:88px;width:min(380px,calc(100vw - 32px));height:min(560px,calc(100vh - 120px));" +
      "background:#fff;color:#111;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.25);display:flex;flex-direction:column;overflow:hidden;z-index:2147483647}" +
      ".cl-panel[hidden]{display:none}" +
      ".cl-head{background:var(--cl-color);color:var(--cl-ink);padding:12px 14px;display:flex;align-items:center;justify-content:space-between}" +
      ".cl-head h2{margin:0;font-size:16px;font-weight:600}" +
      ".cl-close{background:transparent;border:0;color:var(--cl-ink);font-size:22px;line-height:1;cursor:pointer;padding:2px 6px}" +
      ".cl-log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:10px;font-size:14px;line-height:1.45}" +
      ".cl-msg{max-width:88%;padding:8px 11px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word}" +
      ".cl-user{align-self:flex-end;background:var(--cl-color);color:var(--cl-ink)}" +
      ".cl-assistant{align-self:flex-start;background:#f1f3f5}" +
      ".cl-assistant[data-state=error]{background:#fdecea;color:#8a1c12}" +
      ".cl-sources{margin:6px 0 0;padding-left:18px;font-size:12px;color:#444}" +
      ".cl-feedback{display:flex;gap:6px;margin-top:6px}" +
      ".cl-feedback button{font-size:12px;border:1px solid #bbb;background:#fff;border-radius:12px;padding:2px 9px;cursor:pointer;color:#222}" +
      ".cl-feedback button[aria-pressed=true]{background:#222;color:#fff;border-color:#222}" +
      ".cl-form{display:flex;gap:8px;padding:10px;border-top:1px solid #e5e5e5}" +
      ".cl-form textarea{flex:1;resize:none;height:42px;border:1px solid #ccc;border-radius:8px;padding:9px;font-size:14px;color:#111}" +
      ".cl-form button{background:var(--cl-color);color:var(--cl-ink);border:0;border-radius:8px;padding:0 14px;font-size:14px;cursor:pointer}" +
      ".cl-form button:disabled{opacity:.6;cursor:default}" +
      ".cl-sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
  });
  var icon = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("width", "26");
  icon.setAttribute("height", "26");
  icon.setAttribute("aria-hidden", "true");
  var path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("fill", "currentColor");
  path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z");
  icon.appendChild(path);

  var bubble = el("button", {
    class: "cl-bubble", type: "button", "aria-label": "Open chat",
    "aria-expanded": "false", "aria-controls": "cl-panel",
  }, [icon]);
  var title = el("h2", { id: "cl-title", text: "Chat" });
  var close = el("button", { class: "cl-close", type: "button", "aria-label": "Close chat", text: "\u00d7" });
  var log = el("div", { class: "cl-log", role: "log", "aria-live": "polite", "aria-relevant": "additions" });
  var input = el("textarea", { id: "cl-input", rows: "1", maxlength: "4000", placeholder: "Type your question…" });
  var send = el("button", { class: "cl-send", type: "submit", text: "Send" });
  var form = el("form", { class: "cl-form" }, [
    el("label", { class: "cl-sr", for: "cl-input", text: "Your message" }), input, send,
  ]);
  var panel = el("div", {
    class: "cl-panel", id: "cl-panel", role: "dialog", "aria-labelledby": "cl-title", hidden: "",
  }, [el("div", { class: "cl-head" }, [title, close]), log, form]);
  root.appendChild(style);
  root.appendChild(bubble);
  root.appendChild(panel);

  function side(position) {
    var s = position === "left" ? "left" : "right";
    [bubble, panel].forEach(function (n) { n.style[s] = "20px"; });
  }
  // The text on the tenant's colour: white or near-black, whichever contrasts more (WCAG
  // relative luminance), so a light brand colour stays readable.
  function setColor(hex) {
    var c = /^#[0-9a-fA-F]{6}$/.test(hex) ? hex : "#2563eb";
    var lum = [1, 3, 5].map(function (i) {
      var v = parseInt(c.substr(i, 2), 16) / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    var l = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2];
    var onWhite = 1.05 / (l + 0.05);
    var onDark = (l + 0.05) / (0.0056 + 0.05); // on #111
    host.style.setProperty("--cl-color", c);
    host.style.setProperty("--cl-ink", onWhite >= onDark ? "#fff" : "#111");
  }
  setColor("#2563eb");
  side("right");

  // ----- talking to the server ------------------------------------------------------------------
  function api(path, options) {
    return fetch(BASE + path, Object.assign({ mode: "cors", credentials: "omit" }, options || {}));
  }
  function errorText(response) {
    return response.json().then(
      function (v) { return (v && v.error && v.error.message) || "Something went wrong."; },
      function () { return "Something went wrong."; }
    );
  }
  var config = null;
  var configLoaded = api("/widget/v1/config?key=" + encodeURIComponent(KEY))
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (c) {
      config = c;
      if (!c) return;
      setColor(c.color);
      title.textContent = c.title;
      side(c.position);
    })
    .catch(function () { config = null; });

  // ----- messages -----------------------------------------------------------------------------
  function scrollDown() { log.scrollTop = log.scrollHeight; }
  function addUser(text) {
    log.appendChild(el("div", { class: "cl-msg cl-user", text: text }));
    scrollDown();
  }
  function addAssistant(text) {
    var body = el("p", { class: "cl-text", text: text || "" });
    body.style.margin = "0";
    var node = el("div", { class: "cl-msg cl-assistant", "data-state": "done", "data-tokens": "0" }, [body]);
    log.appendChild(node);
    scrollDown();
    return node;
  }
  function showSources(node, citations) {
    var old = node.querySelector(".cl-sources");
    if (old) old.remove();
    if (!citations || !citations.length) return;
    var list = el("ol", { class: "cl-sources", "aria-label": "Sources" });
    citations.forEach(function (c) {
      var where = c.section && c.section.length ? " — " + c.section.join(" › ") : "";
      list.appendChild(el("li", { text: c.title + where + (c.page ? " (p. " + c.page + ")" : "") }));
    });
    node.appendChild(list);
  }
  function showFeedback(node, messageId, helpful) {
    var yes = el("button", { type: "button", "aria-pressed": String(helpful === true), text: "Helpful" });
    var no = el("button", { type: "button", "aria-pressed": String(helpful === false), text: "Not helpful" });
    function rate(value) {
      yes.setAttribute("aria-pressed", String(value));
      no.setAttribute("aria-pressed", String(!value));
      api("/widget/v1/feedback", {
        method: "POST",
        headers: { "Content-Type": "text/plain;charset=UTF-8" },
        body: JSON.stringify({
          key: KEY, visitor_id: visitorId, conversation_id: conversationId,
          message_id: messageId, helpful: value,
        }),
      });
    }
    yes.addEventListener("click", function () { rate(true); });
    no.addEventListener("click", function () { rate(false); });
    node.appendChild(el("div", { class: "cl-feedback", role: "group", "aria-label": "Was this helpful?" }, [yes, no]));
  }

  var historyLoaded = false;
  function loadHistory() {
    if (historyLoaded) return Promise.resolve();
    historyLoaded = true;
    return configLoaded.then(function () {
      if (config && !config.enabled) {
        addAssistant("The assistant is not available right now.");
        input.disabled = true;
        send.disabled = true;
        return;
      }
      var greet = function () { if (config && config.greeting) addAssistant(config.greeting); };
      if (!conversationId) return greet();
      return api("/widget/v1/conversations/" + encodeURIComponent(conversationId) +
          "?key=" + encodeURIComponent(KEY) + "&visitor_id=" + encodeURIComponent(visitorId))
        .then(function (r) {
          if (!r.ok) { conversationId = null; store.set("conversation", ""); return greet(); }
          return r.json().then(function (h) {
            greet();
            h.messages.forEach(function (m) {
              if (m.role === "user") return addUser(m.text);
              var node = addAssistant(m.text);
              showSources(node, m.citations);
              if (m.role === "assistant") showFeedback(node, m.id, m.helpful);
            });
          });
        })
        .catch(greet);
    });
  }

  // Reads a server-sent event stream, calling onEvent(name, data) for each event.
  function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return;
        buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n");
        var at;
        while ((at = buffer.indexOf("\n\n")) >= 0) {
          var block = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          var name = "message", data = [];
          block.split("\n").forEach(function (line) {
            if (line.indexOf("event:") === 0) name = line.slice(6).trim();
            else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
          });
          if (data.length) {
            try { onEvent(name, JSON.parse(data.join("\n"))); } catch (e) { /* not ours */ }
          }
        }
        return pump();
      });
    }
    return pump();
  }

  var busy = false;
  function ask(text) {
    busy = true;
    send.disabled = true;
    addUser(text);
    var node = addAssistant("");
    var body = node.querySelector(".cl-text");
    node.setAttribute("data-state", "streaming");
    node.setAttribute("aria-busy", "true");
    var tokens = 0;
    var finished = false;
    function end(state) {
      finished = true;
      node.setAttribute("data-state", state);
      node.removeAttribute("aria-busy");
      busy = false;
      send.disabled = false;
      input.focus();
    }
    function fail(message) {
      body.textContent = message;
      end("error");
    }
    var payload = { key: KEY, visitor_id: visitorId, message: text };
    if (conversationId) payload.conversation_id = conversationId;
    api("/widget/v1/messages", {
      method: "POST",
      headers: { "Content-Type": "text/plain;charset=UTF-8", Accept: "text/event-stream" },
      body: JSON.stringify(payload),
    })
      .then(function (response) {
        if (!response.ok) return errorText(response).then(fail);
        return readEvents(response, function (name, data) {
          if (name === "token") {
            tokens += 1;
            node.setAttribute("data-tokens", String(tokens));
            body.textContent += data.text;
            scrollDown();
          } else if (name === "citations") {
            showSources(node, data.citations);
          } else if (name === "done") {
            body.textContent = data.answer;
            conversationId = data.conversation_id;
            store.set("conversation", conversationId);
            showSources(node, data.citations);
            showFeedback(node, data.message_id, null);
            end("done");
            scrollDown();
          } else if (name === "error") {
            fail((data.error && data.error.message) || "Something went wrong.");
          }
        }).then(function () { if (!finished) fail("The answer was cut off. Please try again."); });
      })
      .catch(function () { if (!finished) fail("Could not reach the assistant. Please try again."); });
  }

  // ----- behaviour ----------------------------------------------------------------------------
  function open() {
    panel.hidden = false;
    bubble.setAttribute("aria-expanded", "true");
    bubble.setAttribute("aria-label", "Close chat");
    loadHistory().then(scrollDown);
    input.focus();
  }
  function shut() {
    panel.hidden = true;
    bubble.setAttribute("aria-expanded", "false");
    bubble.setAttribute("aria-label", "Open chat");
    bubble.focus();
  }
  bubble.addEventListener("click", function () { panel.hidden ? open() : shut(); });
  close.addEventListener("click", shut);
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") shut(); });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text || busy) return;
    input.value = "";
    ask(text);
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
    }
  });

  function mount() { document.body.appendChild(host); }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
