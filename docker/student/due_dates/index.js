// Due dates in nbgrader's Assignment List (JupyterLab), next to each assignment's name.
//
// nbgrader 0.9.6's list shows no due date. Each time the list is drawn (opened, refreshed, after a fetch or a
// submit) this reads the hub's progress page (/services/progress/due.json: the gradebook's due dates, which TAs
// change in the formgrader, and the student's own extensions) and writes "due ..." after each name. The text
// is set with textContent only: nothing from the answer becomes markup.
const LISTS = ["#released_assignments_list", "#fetched_assignments_list", "#submitted_assignments_list"];
const ITEMS = LISTS.map((list) => `${list} > .list_item:not(.nested_list_item)`).join(", ");

function dueUrl() {
  const data = document.getElementById("jupyter-config-data");
  const hubPrefix = data ? JSON.parse(data.textContent).hubPrefix || "/hub/" : "/hub/";
  return hubPrefix.replace(/hub\/$/, "") + "services/progress/due.json";
}

function describe(answer, assignment) {
  if (!Object.prototype.hasOwnProperty.call(answer.due, assignment)) {
    return "";
  }
  const due = answer.due[assignment];
  const hours = answer.extension_hours[assignment] || 0;
  if (!due) {
    return "no due date";
  }
  return `due ${due}` + (hours ? ` + your extension of ${hours} h` : "");
}

function annotate(answer) {
  for (const item of document.querySelectorAll(ITEMS)) {
    const name = item.querySelector(".item_name");
    if (!name) {
      continue;
    }
    let label = name.querySelector(".tinytorch-due");
    const assignment = (name.firstChild ? name.firstChild.textContent : name.textContent).trim();
    const text = describe(answer, assignment);
    if (!label) {
      label = document.createElement("span");
      label.className = "tinytorch-due";
      label.style.marginLeft = "1em";
      label.style.opacity = "0.75";
      name.appendChild(label);
    }
    if (label.textContent !== text) {
      label.textContent = text;
    }
  }
}

let asking = null;

// The answer is read through a hidden frame, not fetch(): the progress page takes the hub's login cookie only on a
// page load (JupyterHub refuses cookie logins on script requests without its XSRF token, which lives on the
// progress page's own path), and a frame's load is one. The frame is of this origin, so its text is readable.
function refresh() {
  const frame = document.createElement("iframe");
  frame.style.display = "none";
  const done = (answer) => {
    frame.remove();
    annotate(answer);
  };
  const timer = setTimeout(() => done({ due: {}, extension_hours: {} }), 30000);
  frame.addEventListener("load", () => {
    clearTimeout(timer);
    try {
      done(JSON.parse(frame.contentDocument.body.textContent));
    } catch (error) {
      console.warn("tinytorch-due-dates: could not read the due dates", error);
      done({ due: {}, extension_hours: {} }); // empty labels: no new question before the list is drawn again
    }
  });
  frame.src = dueUrl();
  document.body.appendChild(frame);
}

const plugin = {
  id: "tinytorch-due-dates:plugin",
  autoStart: true,
  activate: () => {
    // The list replaces its rows when it is drawn again: a row without its label means a new drawing.
    new MutationObserver(() => {
      const unlabelled = [...document.querySelectorAll(ITEMS)].some((item) => !item.querySelector(".tinytorch-due"));
      if (unlabelled && asking === null) {
        asking = setTimeout(() => {
          asking = null;
          refresh();
        }, 300);
      }
    }).observe(document.body, { childList: true, subtree: true });
  },
};

module.exports = [plugin];
