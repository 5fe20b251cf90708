// Portvakt administration: enhancements only; every page works without this file.
// - A "Print" button on pages that have a [data-print] placeholder.
// - Forms marked data-confirm ask before they submit (the server asks again without JS).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-print]").forEach(function (el) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = el.getAttribute("data-print");
    b.addEventListener("click", function () { window.print(); });
    el.appendChild(b);
  });
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  });
});
