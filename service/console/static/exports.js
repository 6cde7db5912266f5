// Follows an export bundle while it is built: polls the job's progress and reloads the
// page once it is done or failed. Without scripts the page refreshes itself instead.
const status = document.querySelector("[data-progress-url]");
if (status) {
  const bar = document.getElementById("export-progress");
  const rows = document.getElementById("export-rows");
  const poll = async () => {
    try {
      const r = await fetch(status.dataset.progressUrl, {headers: {Accept: "application/json"}});
      if (r.ok) {
        const job = await r.json();
        status.textContent = job.status;
        bar.value = job.progress ?? 0;
        bar.textContent = Math.round((job.progress ?? 0) * 100) + " %";
        rows.textContent = `${job.rows_done} of ${job.rows_total ?? "?"} rows`;
        if (job.status === "done" || job.status === "failed") {
          window.location.reload();
          return;
        }
      }
    } catch (e) {
      // A dropped connection: try again at the next tick.
    }
    window.setTimeout(poll, 1000);
  };
  window.setTimeout(poll, 500);
}
