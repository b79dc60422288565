/* The tablet's own on-screen keyboard for the comment: a tablet in kiosk mode may have no
 * system keyboard, and the citizen should not see the OS one (the box has inputmode="none").
 *
 * Vietnamese by a row of marks that change the word just typed, rather than Telex: a citizen
 * who never learnt Telex sees "á à ả ã ạ" and "â ă ơ đ" and taps them after the word ("Cam"
 * then "ả" gives "Cảm"; "nguoi" then "ơ ư" then "à" gives "người"). A tone goes on
 * the syllable's vowel by the usual rule (the vowel with a hat or horn; else the last one before
 * a final consonant; else the middle of three or the first of two); a mark tapped twice comes off.
 * Works with touch and mouse (click), and keeps the caret where the citizen put it.
 */
"use strict";

var SipasKeyboard = (function () {
  var TONES = { acute: "\u0301", grave: "\u0300", hook: "\u0309", tilde: "\u0303", dot: "\u0323" };
  var SHAPES = { hat: "\u0302", breve: "\u0306", horn: "\u031B" };
  var VOWELS = "aeiouy";
  // The keys, row by row: a string is a letter (or digit, or punctuation) typed as is; an
  // object is a key of its own kind. The names of the marks are Vietnamese whatever the UI.
  var LAYOUT = [
    [{ tone: "acute", label: "á", name: "sắc" }, { tone: "grave", label: "à", name: "huyền" },
     { tone: "hook", label: "ả", name: "hỏi" }, { tone: "tilde", label: "ã", name: "ngã" },
     { tone: "dot", label: "ạ", name: "nặng" }, { shape: "hat", label: "â ê ô", name: "mũ" },
     { shape: "breve", label: "ă", name: "trăng" }, { shape: "horn", label: "ơ ư", name: "móc" },
     "đ"],
    "1234567890".split(""),
    "qwertyuiop".split(""),
    "asdfghjkl".split("").concat([{ action: "backspace", label: "\u232B", wide: true }]),
    [{ action: "shift", label: "\u21E7", wide: true }].concat("zxcvbnm,.".split("")),
    [{ action: "space", label: "", wide: true }],
  ];

  /* A letter as its base letter, its shape mark (hat, breve, horn) and its tone mark. */
  function parts(ch) {
    var d = ch.normalize("NFD");
    var out = { base: d.charAt(0), shape: "", tone: "" };
    for (var i = 1; i < d.length; i++) {
      var m = d.charAt(i);
      if (m === SHAPES.hat || m === SHAPES.breve || m === SHAPES.horn) out.shape = m;
      else out.tone = m;
    }
    return out;
  }
  function compose(p) { return (p.base + p.shape + p.tone).normalize("NFC"); }
  function isVowel(ch) { return VOWELS.indexOf(parts(ch).base.toLowerCase()) >= 0; }

  /* The vowels of the word's syllable (indices into `chars`), without the u of "qu" and the
   * i of "gi" when another vowel follows: "qua" is toned on the a, "già" too. */
  function syllable(chars) {
    var end = chars.length - 1;
    while (end >= 0 && !isVowel(chars[end])) end--;
    if (end < 0) return { vowels: [], closed: false };
    var start = end;
    while (start > 0 && isVowel(chars[start - 1])) start--;
    var lead = start > 0 ? parts(chars[start - 1]).base.toLowerCase() : "";
    var first = parts(chars[start]).base.toLowerCase();
    if (end > start && ((lead === "q" && first === "u") || (lead === "g" && first === "i"))) {
      start++;
    }
    var vowels = [];
    for (var i = start; i <= end; i++) vowels.push(i);
    return { vowels: vowels, closed: end < chars.length - 1 };
  }

  function withTone(chars, tone) {
    var s = syllable(chars);
    if (!s.vowels.length) return null;
    var had = "";
    s.vowels.forEach(function (i) {
      var p = parts(chars[i]);
      if (p.tone) had = p.tone;
      p.tone = "";
      chars[i] = compose(p);
    });
    if (had === tone) return chars; // tapped twice: the tone comes off
    var shaped = s.vowels.filter(function (i) { return parts(chars[i]).shape; });
    var target;
    if (shaped.length) target = shaped[shaped.length - 1];
    else if (s.vowels.length === 1 || s.closed) target = s.vowels[s.vowels.length - 1];
    else if (s.vowels.length === 3) target = s.vowels[1];
    else target = s.vowels[0];
    var p = parts(chars[target]);
    p.tone = tone;
    chars[target] = compose(p);
    return chars;
  }

  function withShape(chars, shape) {
    var fits = { "\u0302": "aeo", "\u0306": "a", "\u031B": "ou" }[shape];
    var target = -1;
    for (var i = chars.length - 1; i >= 0 && target < 0; i--) {
      if (fits.indexOf(parts(chars[i]).base.toLowerCase()) >= 0) target = i;
    }
    if (target < 0) return null;
    var p = parts(chars[target]);
    var on = p.shape !== shape;
    p.shape = on ? shape : "";
    chars[target] = compose(p);
    // "uo" takes its horns together: ươ (người, được).
    var before = target > 0 ? parts(chars[target - 1]) : null;
    if (shape === SHAPES.horn && p.base.toLowerCase() === "o" && before &&
        before.base.toLowerCase() === "u") {
      before.shape = on ? shape : "";
      chars[target - 1] = compose(before);
    }
    return chars;
  }

  /* Attach a keyboard under `box` (a textarea); `strings` names the space and delete keys. */
  function attach(box, strings) {
    var shifted = false;
    box.setAttribute("inputmode", "none"); // no system keyboard over the page
    var board = document.createElement("div");
    board.className = "keyboard";
    board.setAttribute("role", "group");
    board.setAttribute("aria-label", strings.keyboard);

    function changed() { box.dispatchEvent(new Event("input", { bubbles: true })); }

    function type(text) {
      if (box.maxLength > 0 && box.value.length + text.length > box.maxLength) return;
      box.setRangeText(text, box.selectionStart, box.selectionEnd, "end");
      changed();
    }

    function backspace() {
      var start = box.selectionStart, end = box.selectionEnd;
      if (start === end && start > 0) {
        // One letter, with its marks: step back over a surrogate pair as one character.
        start -= /[\uDC00-\uDFFF]/.test(box.value.charAt(start - 1)) && start > 1 ? 2 : 1;
      }
      if (start === end) return;
      box.setRangeText("", start, end, "end");
      changed();
    }

    function mark(change) {
      var caret = box.selectionEnd;
      var start = caret;
      while (start > 0 && /\p{L}/u.test(box.value.charAt(start - 1))) start--;
      if (start === caret) return;
      var chars = Array.from(box.value.slice(start, caret));
      var done = change(chars);
      if (!done) return;
      box.setRangeText(done.join(""), start, caret, "end");
      changed();
    }

    function press(key) {
      if (typeof key === "string") {
        type(shifted ? key.toUpperCase() : key);
        if (shifted) setShift(false);
      } else if (key.tone) mark(function (c) { return withTone(c, TONES[key.tone]); });
      else if (key.shape) mark(function (c) { return withShape(c, SHAPES[key.shape]); });
      else if (key.action === "space") type(" ");
      else if (key.action === "backspace") backspace();
      else if (key.action === "shift") setShift(!shifted);
    }

    var letterKeys = [];
    var shiftKey = null;
    function setShift(on) {
      shifted = on;
      if (shiftKey) shiftKey.setAttribute("aria-pressed", String(on));
      letterKeys.forEach(function (b) {
        b.textContent = on ? b.dataset.key.toUpperCase() : b.dataset.key;
      });
    }

    LAYOUT.forEach(function (keys, rowIndex) {
      var row = document.createElement("div");
      row.className = rowIndex === 0 ? "keys marks" : "keys";
      keys.forEach(function (key) {
        var b = document.createElement("button");
        b.type = "button";
        if (typeof key === "string") {
          b.textContent = key;
          b.dataset.key = key;
          if (key.toUpperCase() !== key) letterKeys.push(b);
        } else {
          b.dataset.key = key.tone || key.shape || key.action;
          if (key.wide) b.className = "wide";
          if (key.name) {
            b.appendChild(document.createTextNode(key.label));
            var small = document.createElement("small");
            small.textContent = key.name;
            b.appendChild(small);
            b.setAttribute("aria-label", "dấu " + key.name);
          } else if (key.action) {
            b.textContent = key.label || strings["keyboard_" + key.action];
            b.setAttribute("aria-label", strings["keyboard_" + key.action]);
          }
          if (key.action === "shift") { shiftKey = b; b.setAttribute("aria-pressed", "false"); }
        }
        // Keep the caret in the box: a key takes no focus from it.
        b.addEventListener("pointerdown", function (e) { e.preventDefault(); });
        b.addEventListener("mousedown", function (e) { e.preventDefault(); });
        b.addEventListener("click", function () { press(key); });
        row.appendChild(b);
      });
      board.appendChild(row);
    });
    box.insertAdjacentElement("afterend", board);
    return board;
  }

  return { attach: attach, withTone: withTone, withShape: withShape };
})();
