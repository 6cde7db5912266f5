// Starts Swagger UI on the reference page; a file of its own, as the page allows no inline script.
(function () {
  "use strict";
  var element = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: element.getAttribute("data-spec-url"),
    domNode: element,
    deepLinking: true,
  });
})();
