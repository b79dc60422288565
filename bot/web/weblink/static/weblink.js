/* The web link's page: asks the survey (form.js), thanks, and sends the answers, which wait in
 * the browser while it is offline. The thank-you shows the reference of the case the answers
 * opened once the server has them, now or when the network is back. A file of its own: the
 * Content-Security-Policy refuses inline scripts (bot/web/hardening.py). */
"use strict";
(function () {
  var config = JSON.parse(document.getElementById("web-config").textContent);
  var root = document.getElementById("survey");
  var pending = document.getElementById("pending");
  var strings = config.ui.strings;
  var done = false;
  function flush() {
    return SipasForm.flush().then(function (left) {
      pending.textContent = left ? strings.form_queued : "";
      if (done) SipasForm.addReference(root, config.form.token, strings.form_case_reference);
    });
  }
  new SipasForm.Survey(root, config.form, config.ui, function (answers) {
    SipasForm.queue(config.submit_url, config.form.token, answers);
    root.textContent = "";
    root.setAttribute("data-state", "thanks");
    root.appendChild(SipasForm.el("p", { class: "thanks", text: strings.thanks }));
    done = true;
    SipasForm.showReference(root, config.form.token, strings.form_case_reference,
      function () { return true; }).then(flush);
  }, function () {});
  window.addEventListener("online", flush);
  flush();
})();
