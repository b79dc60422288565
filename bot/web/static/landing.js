// The landing page's copy button (no inline script: the Content-Security-Policy forbids it).
document.getElementById("copy").addEventListener("click", function () {
  var text = document.getElementById("code").textContent.trim();
  var done = function () { document.getElementById("copy").textContent = "Đã sao chép " + text; };
  if (navigator.clipboard) { navigator.clipboard.writeText(text).then(done, done); } else { done(); }
});
