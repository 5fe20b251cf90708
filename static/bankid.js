// The BankID wait page: renews the QR code every second and asks Portvakt (never BankID)
// how the login goes every two seconds. Without JavaScript the Refresh button does the same.
(function () {
  "use strict";
  var order = document.currentScript.getAttribute("data-order");
  var q = "?o=" + encodeURIComponent(order);
  var img = document.getElementById("bankid-qr");
  var box = document.getElementById("bankid-qr-box");
  var status = document.querySelector("#bankid-status p");
  var refresh = document.getElementById("bankid-refresh");
  if (refresh) { refresh.hidden = true; }
  var qrTimer = img ? setInterval(function () {
    img.src = "/login/bankid/qr" + q + "&t=" + Date.now();
  }, 1000) : null;
  function stopQr() {
    if (qrTimer) { clearInterval(qrTimer); qrTimer = null; }
    if (box) { box.hidden = true; }
  }
  function poll() {
    fetch("/login/bankid/status" + q, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.next) { window.location.assign(s.next); return; }
        if (s.state !== "pending") { window.location.reload(); return; }
        if (status && s.message && status.textContent !== s.message) { status.textContent = s.message; }
        if (!s.qr) { stopQr(); }
        setTimeout(poll, 2000);
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 2000);
})();
