/* The survey form shared by the counter's tablet and the web link.
 *
 * It only asks: the server replays the answers through the survey engine when they arrive.
 * Finished surveys wait in localStorage ("sipas-outbox") until the server has them; each is
 * sent with its survey token, which the server stores once, so a retry never doubles one.
 */
"use strict";

var SipasForm = (function () {
  var OUTBOX = "sipas-outbox";
  var SVG = "http://www.w3.org/2000/svg";
  var FACE_COLOURS = { 1: "#d93025", 2: "#f07d00", 3: "#f2b600", 4: "#7cb342", 5: "#1e8e3e" };

  /* The level's face, drawn here rather than taken from the device's emoji font: a tablet's
   * font may lack the newer faces (a box instead of a frown), and no picture is fetched. */
  function face(level) {
    function shape(tag, attrs) {
      var node = document.createElementNS(SVG, tag);
      Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
      return node;
    }
    var bend = (level - 3) * 9; // the mouth: a frown at 1, a line at 3, a smile at 5
    var svg = shape("svg", { viewBox: "0 0 100 100", class: "face", "aria-hidden": "true" });
    svg.appendChild(shape("circle", { cx: 50, cy: 50, r: 46, fill: FACE_COLOURS[level] }));
    svg.appendChild(shape("circle", { cx: 35, cy: 40, r: 6, fill: "#1b2733" }));
    svg.appendChild(shape("circle", { cx: 65, cy: 40, r: 6, fill: "#1b2733" }));
    svg.appendChild(shape("path", { d: "M30 " + (68 - bend / 2) + " Q50 " + (68 + bend * 1.5) +
      " 70 " + (68 - bend / 2), fill: "none", stroke: "#1b2733", "stroke-width": 6,
      "stroke-linecap": "round" }));
    return svg;
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "onclick") node.addEventListener("click", attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, k) { return values[k]; });
  }

  function applies(item, answers) {
    if (!item.when) return true;
    var a = answers[item.when.item];
    return !!a && a.value !== undefined && item.when.values.indexOf(a.value) >= 0;
  }

  function outbox() {
    try { return JSON.parse(localStorage.getItem(OUTBOX) || "[]"); } catch (e) { return []; }
  }
  function saveOutbox(list) { localStorage.setItem(OUTBOX, JSON.stringify(list)); }

  /* Queue a survey's answers, then try to send everything queued. */
  function queue(url, token, answers) {
    var list = outbox().filter(function (e) { return e.token !== token; });
    list.push({ url: url, token: token, answers: answers });
    saveOutbox(list);
  }

  // The server's answer to each survey it took while this page was open (the case's
  // reference, if the survey opened one); a survey sent later by another page has none here.
  var stored = {};
  function reference(token) { return (stored[token] && stored[token].reference) || null; }

  var flushing = null;
  /* Send the queued surveys one by one; resolves to how many are left when the queue is as
   * empty as it can get. One sending at a time: a call meanwhile gets the same promise. */
  function flush() {
    // Cleared only once settled: with nothing to send, send() has already returned by the
    // time its promise is stored, and clearing it inside would leave a stale promise behind.
    if (!flushing) flushing = send().finally(function () { flushing = null; });
    return flushing;
  }

  async function send() {
    var list = outbox();
    while (list.length) {
      var entry = list[0];
      var response;
      try {
        response = await fetch(entry.url, {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ token: entry.token, answers: entry.answers }),
        });
      } catch (e) { break; } // offline: try again later
      if (response.status >= 500) break;
      // Stored, already stored, or refused for good (unknown, too late): done with it.
      if (response.ok) {
        try { stored[entry.token] = await response.json(); } catch (e) { /* no body */ }
      }
      list = outbox().filter(function (e) { return e.token !== entry.token; });
      saveOutbox(list);
    }
    return list.length;
  }

  /* Ask one survey in `root`; calls onDone(answers, complete) at the end, onTouch on every
   * tap or keystroke, and hooks.textBox(box) for each comment box it shows (the tablet
   * puts its on-screen keyboard there). */
  function Survey(root, data, ui, onDone, onTouch, hooks) {
    var answers = {};
    var history = [];
    var position = 0;
    var items = data.items;
    var s = ui.strings;

    function questionsLeft(from) {
      var n = 0;
      for (var i = from; i < items.length; i++) {
        if (items[i].kind !== "intro" && applies(items[i], answers)) n++;
      }
      return n;
    }

    function answer(item, given) {
      onTouch();
      answers[item.id] = given;
      history.push(position);
      position += 1;
      show();
    }

    function back() {
      onTouch();
      if (!history.length) return;
      position = history.pop();
      delete answers[items[position].id];
      show();
    }

    function show() {
      var intros = [];
      while (position < items.length) {
        var item = items[position];
        if (!applies(item, answers)) { position++; continue; }
        if (item.kind === "intro") { intros.push(item.text); position++; continue; }
        break;
      }
      root.textContent = "";
      if (position >= items.length) { onDone(answers, true); return; }
      var item = items[position];
      var number = history.length + 1;
      var lead = history.length === 0 ? [data.intro].concat(intros) : intros;
      if (lead.length) root.appendChild(el("p", { class: "intro", text: lead.join("\n\n") }));
      root.appendChild(el("div", { class: "progress",
        text: fill(s.progress, { number: number, total: number + questionsLeft(position + 1) }) }));
      root.appendChild(el("h1", { text: item.text }));
      if (item.kind === "scale") {
        var levels = el("div", { class: "levels" });
        for (var v = 1; v <= 5; v++) {
          (function (value) {
            levels.appendChild(el("button", { type: "button", "data-value": String(value),
              onclick: function () { answer(item, { value: value }); } },
              [face(value),
               el("span", { text: ui.scale[String(value)] })]));
          })(v);
        }
        root.appendChild(levels);
        if (item.not_applicable) {
          root.appendChild(el("div", { class: "row" }, [el("button", { type: "button",
            class: "big secondary", text: s.not_applicable,
            onclick: function () { answer(item, { value: 0 }); } })]));
        }
      } else if (item.kind === "choice") {
        var options = el("div", { class: "options" });
        item.options.forEach(function (label, i) {
          options.appendChild(el("button", { type: "button", text: label,
            onclick: function () { answer(item, { value: i + 1 }); } }));
        });
        root.appendChild(options);
      } else {
        var box = el("textarea", { "aria-label": item.text,
          placeholder: item.optional ? s.form_comment_placeholder : "" });
        box.addEventListener("input", onTouch);
        root.appendChild(box);
        if (hooks && hooks.textBox) hooks.textBox(box);
        root.appendChild(el("div", { class: "row" }, [el("button", { type: "button",
          class: "big", text: s.form_send, onclick: function () {
            var text = box.value.trim();
            if (!text && !item.optional) return;
            answer(item, text ? { text: text } : {});
          } })]));
      }
      var row = el("div", { class: "row" });
      if (history.length) {
        row.appendChild(el("button", { type: "button", class: "big secondary",
          text: s.form_back, onclick: back }));
      }
      if (item.optional && item.kind !== "text") {
        row.appendChild(el("button", { type: "button", class: "big secondary", text: s.skip,
          onclick: function () { answer(item, {}); } }));
      }
      if (row.childNodes.length) root.appendChild(row);
    }

    this.answers = function () { return answers; };
    show();
  }

  /* The reference of the case survey `token` opened, added once to `root` (a thank-you
   * screen) when the server's answer gave one; whether it is there. */
  function addReference(root, token, template) {
    var ref = reference(token);
    if (ref && !root.querySelector(".reference")) {
      root.appendChild(el("p", { class: "reference", text: fill(template, { reference: ref }) }));
    }
    return !!root.querySelector(".reference");
  }

  /* On the thank-you screen of survey `token` in `root`: send the answers, then show the
   * reference of the case they opened, if any. Offline, nothing: the answers wait in the
   * outbox. `stillShown()` says whether the screen is still this survey's. */
  function showReference(root, token, template, stillShown) {
    function queued() { return outbox().some(function (e) { return e.token === token; }); }
    // A sending under way may have ended just before this survey was queued: one more try.
    return flush().then(function () { return queued() ? flush() : null; }).then(function () {
      if (stillShown()) addReference(root, token, template);
    });
  }

  return { Survey: Survey, queue: queue, flush: flush, outbox: outbox, el: el, fill: fill,
           reference: reference, addReference: addReference, showReference: showReference };
})();
