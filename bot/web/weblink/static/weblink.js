/* The web link's page: asks the survey (form.js), thanks, and sends the answers, which wait in
 * the browser while it is offline. A file of its own: the Content-Security-Policy refuses
 * inline scripts (bot/web/hardening.py). */
"use strict";
(function () {
  var config = JSON.parse(document.getElementById("web-config").textContent);
  var root = document.getElementById("survey");
  var pending = document.getElementById("pending");
  function flush() {
    return SipasForm.flush().then(function (left) {
      pending.textContent = left ? config.ui.strings.form_queued : "";
    });
  }
  new SipasForm.Survey(root, config.form, config.ui, function (answers) {
    SipasForm.queue(config.submit_url, config.form.token, answers);
    root.textContent = "";
    root.setAttribute("data-state", "thanks");
    root.appendChild(SipasForm.el("p", { class: "thanks", text: config.ui.strings.thanks }));
    SipasForm.showReference(root, config.form.token, config.ui.strings.form_case_reference,
      function () { return true; }).then(flush);
  }, function () {});
  window.addEventListener("online", flush);
  flush();
})();
