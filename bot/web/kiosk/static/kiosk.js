/* The counter's tablet: waits for the officer's tap, asks one survey, thanks, and goes back
 * to the start after the last answer or after a minute without a touch, so the next citizen
 * never sees the last one's answers. Answers wait in localStorage until the server has them. */
"use strict";
(function () {
  var config = JSON.parse(document.getElementById("kiosk-config").textContent);
  var s = config.ui.strings;
  var root = document.getElementById("survey");
  var pending = document.getElementById("pending");
  var current = null; // {token, survey}
  var idleTimer = null;
  var shown = 0; // which thank-you screen is up: a late answer never reaches the next one

  function showPending() {
    var n = SipasForm.outbox().length;
    pending.textContent = n ? SipasForm.fill(s.form_pending, { count: n }) : "";
  }

  function flush() { return SipasForm.flush().then(showPending); }

  function touch() {
    if (idleTimer) clearTimeout(idleTimer);
    if (current) idleTimer = setTimeout(abandon, config.idle_seconds * 1000);
  }

  function abandon() {
    // A minute without a touch: what was answered is kept (a partial survey), the rest reset.
    if (current) {
      var answers = current.survey.answers();
      if (Object.keys(answers).length) SipasForm.queue(config.submit_url, current.token, answers);
    }
    waiting();
    flush();
  }

  function waiting(notice) {
    current = null;
    shown++;
    if (idleTimer) clearTimeout(idleTimer);
    root.textContent = "";
    root.setAttribute("data-state", "waiting");
    root.appendChild(SipasForm.el("p", { class: "intro", text: s.kiosk_waiting }));
    if (notice) root.appendChild(SipasForm.el("p", { class: "notice", text: notice }));
    root.appendChild(SipasForm.el("button", { type: "button", class: "big", id: "invite",
      text: s.kiosk_invite, onclick: invite }));
    showPending();
  }

  function thanks(token) {
    current = null;
    var screen = ++shown;
    root.textContent = "";
    root.setAttribute("data-state", "thanks");
    root.appendChild(SipasForm.el("p", { class: "thanks", text: s.thanks }));
    if (!navigator.onLine) root.appendChild(SipasForm.el("p", { class: "notice", text: s.form_queued }));
    setTimeout(function () { if (!current && shown === screen) waiting(); },
      config.thanks_seconds * 1000);
    SipasForm.showReference(root, token, s.form_case_reference, function () {
      return shown === screen && root.getAttribute("data-state") === "thanks";
    }).then(showPending);
  }

  async function invite() {
    await SipasForm.flush(); // what waits goes first: the server then sees no open survey
    var response;
    try {
      response = await fetch(config.open_url, { method: "POST", credentials: "same-origin" });
    } catch (e) { waiting(s.kiosk_offline); return; }
    if (response.status === 429) { waiting(s.kiosk_limit); return; }
    if (!response.ok) { waiting(s.form_failed); return; }
    var data = await response.json();
    root.textContent = "";
    root.setAttribute("data-state", "survey");
    current = { token: data.token };
    current.survey = new SipasForm.Survey(root, data, config.ui, function (answers) {
      SipasForm.queue(config.submit_url, data.token, answers);
      thanks(data.token);
    }, touch, { textBox: function (box) { SipasKeyboard.attach(box, s); } });
    touch();
  }

  window.addEventListener("online", flush);
  setInterval(flush, 15000);
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/kiosk/sw.js", { scope: "/kiosk/" })
      .then(function () { return navigator.serviceWorker.ready; })
      .then(function (registration) {
        registration.active.postMessage({ keep: location.pathname });
      })
      .catch(function () {});
  }
  waiting();
  flush();
})();
