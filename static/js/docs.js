// Swagger UI, served from /static so /docs works offline and under a strict CSP.
window.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    oauth2RedirectUrl: window.location.origin + "/static/vendor/swagger-ui/oauth2-redirect.html",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
