// Progressive enhancement only: every page works without this file.
// A poster that fails to load becomes the placeholder instead of a broken image.
document.addEventListener(
  "error",
  function (event) {
    var image = event.target;
    if (image.tagName === "IMG" && image.classList.contains("poster")) {
      var placeholder = document.createElement("span");
      placeholder.className = "poster-placeholder";
      placeholder.setAttribute("role", "img");
      placeholder.setAttribute("aria-label", image.alt || "No poster");
      image.replaceWith(placeholder);
    }
  },
  true
);
