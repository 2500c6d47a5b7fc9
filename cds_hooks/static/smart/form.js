/* A small, accessible renderer for the assessment Questionnaires (FHIR R4, SDC subset).
 *
 * Understood: group (repeats: one fieldset per instance, add/remove buttons), choice (radio buttons
 * for up to 5 options, else a select), integer (number input, minValue/maxValue), date, reference
 * (hidden: carries the recorded resource a group completes), readOnly calculated items (an <output>
 * computed from the answers' ordinalValue), enableWhen (=, on a sibling's Coding answer).
 * Every control has a <label> or a <legend>; errors are tied with aria-describedby.
 * Text from the Questionnaire or the chart is always set with textContent, never parsed as HTML.
 */
"use strict";

const ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue";
const MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue";
const MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue";
const RADIO_LIMIT = 5;
let uniqueId = 0;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function ext(item, url) {
  return (item.extension || []).find((e) => e.url === url);
}

function codingKey(coding) {
  return coding ? `${coding.system}|${coding.code}` : "";
}

function optionLabel(option) {
  if (option.valueCoding) return option.valueCoding.display || option.valueCoding.code;
  return String(option.valueString ?? option.valueInteger ?? "");
}

function optionValue(option) {
  if (option.valueCoding) return codingKey(option.valueCoding);
  return String(option.valueString ?? option.valueInteger ?? "");
}

function answersOf(items, linkId) {
  return (items || []).filter((i) => i.linkId === linkId);
}

/* One rendered instance of a list of items (the root, or one repeat of a group). */
class Instance {
  constructor(qid, items, answers, onChange) {
    this.qid = qid;
    this.items = items;
    this.onChange = onChange;
    this.controls = {}; // linkId -> {item, get(), set(), wrapper, groups}
    this.node = el("div", { className: "items" });
    for (const item of items) this.node.append(this.renderItem(item, answersOf(answers, item.linkId)));
    this.refresh();
  }

  renderItem(item, answered) {
    if (item.type === "group") return this.renderGroup(item, answered);
    const id = `q${++uniqueId}`;
    const first = answered[0] && answered[0].answer && answered[0].answer[0];
    const hint = el("p", { className: "field-error", id: `${id}-error`, hidden: true });
    let control;
    if (item.type === "reference") {
      let value = first ? first.valueReference : null;
      control = { get: () => (value ? { valueReference: value } : null), wrapper: el("span", { hidden: true }) };
    } else if (item.readOnly) {
      const out = el("output", { id, "aria-live": "polite" });
      const wrapper = el("div", { className: "field calculated" }, el("span", { className: "label", id: `${id}-label`, text: item.text }), out);
      out.setAttribute("aria-labelledby", `${id}-label`);
      control = { get: () => null, wrapper, output: out };
    } else if (item.type === "choice" && (item.answerOption || []).length <= RADIO_LIMIT) {
      const fieldset = el("fieldset", { className: "field choice" }, el("legend", { text: item.text + (item.required ? " (required)" : "") }));
      const name = id;
      const radios = (item.answerOption || []).map((option, n) => {
        const radio = el("input", { type: "radio", name, id: `${id}-${n}`, value: optionValue(option) });
        if (first && optionValue(first) === optionValue(option)) radio.checked = true;
        radio.addEventListener("change", () => this.changed());
        fieldset.append(el("div", { className: "option" }, radio, el("label", { for: `${id}-${n}`, text: optionLabel(option) })));
        return radio;
      });
      fieldset.append(hint);
      fieldset.setAttribute("aria-describedby", hint.id);
      const clear = el("button", { type: "button", className: "link", text: `Clear` });
      clear.setAttribute("aria-label", `Clear ${item.text}`);
      clear.addEventListener("click", () => { radios.forEach((r) => (r.checked = false)); this.changed(); });
      fieldset.append(clear);
      control = {
        get: () => {
          const chosen = radios.findIndex((r) => r.checked);
          return chosen < 0 ? null : answerFor(item.answerOption[chosen]);
        },
        wrapper: fieldset,
        focusable: radios[0],
        invalid: (flag) => radios.forEach((r) => (flag ? r.setAttribute("aria-invalid", "true") : r.removeAttribute("aria-invalid"))),
      };
    } else if (item.type === "choice") {
      const select = el("select", { id, "aria-describedby": hint.id });
      select.append(el("option", { value: "", text: "(not answered)" }));
      for (const option of item.answerOption || []) {
        const opt = el("option", { value: optionValue(option), text: optionLabel(option) });
        if (first && optionValue(first) === optionValue(option)) opt.selected = true;
        select.append(opt);
      }
      select.addEventListener("change", () => this.changed());
      control = {
        get: () => {
          const chosen = (item.answerOption || []).find((o) => optionValue(o) === select.value);
          return chosen ? answerFor(chosen) : null;
        },
        wrapper: el("div", { className: "field" }, el("label", { for: id, text: item.text + (item.required ? " (required)" : "") }), select, hint),
        focusable: select,
      };
    } else {
      const type = item.type === "integer" ? "number" : item.type === "date" ? "date" : "text";
      const min = ext(item, MIN_VALUE), max = ext(item, MAX_VALUE);
      const input = el("input", {
        id, type, "aria-describedby": hint.id,
        min: min ? min.valueInteger : undefined, max: max ? max.valueInteger : type === "date" ? new Date().toISOString().slice(0, 10) : undefined,
        inputmode: type === "number" ? "numeric" : undefined,
      });
      if (first) input.value = String(first.valueInteger ?? first.valueDate ?? first.valueString ?? "");
      input.addEventListener("input", () => this.changed());
      control = {
        get: () => {
          const text = input.value.trim();
          if (!text) return null;
          if (item.type === "integer") {
            const number = Number(text);
            return Number.isFinite(number) ? { valueInteger: number } : { valueString: text };
          }
          return item.type === "date" ? { valueDate: text } : { valueString: text };
        },
        wrapper: el("div", { className: "field" }, el("label", { for: id, text: item.text }), input, hint),
        focusable: input,
      };
    }
    control.item = item;
    control.hint = hint;
    this.controls[item.linkId] = control;
    return control.wrapper;
  }

  renderGroup(item, answered) {
    const section = el("div", { className: "group" });
    const list = el("div", { className: "instances" });
    const group = { item, instances: [], wrapper: section };
    const add = (answers, removable) => {
      const instance = new Instance(this.qid, item.item || [], answers, this.onChange);
      const legend = el("legend", { text: item.text });
      const fieldset = el("fieldset", { className: "instance" }, legend, instance.node);
      instance.legend = legend;
      instance.fieldset = fieldset;
      if (removable) {
        const remove = el("button", { type: "button", className: "secondary", text: `Remove this ${item.text.toLowerCase()}` });
        remove.addEventListener("click", () => {
          group.instances = group.instances.filter((i) => i !== instance);
          fieldset.remove();
          this.changed();
          addButton.focus();
        });
        fieldset.append(remove);
      }
      group.instances.push(instance);
      list.append(fieldset);
      instance.onChange = () => { this.relabel(group); this.onChange(); };
      this.relabel(group);
      return instance;
    };
    for (const answers of answered) add(answers.item || [], !answers.item?.some((i) => i.linkId === "existing" || i.linkId === "level"));
    const addButton = el("button", { type: "button", className: "secondary", text: `Add a ${item.text.toLowerCase()}` });
    addButton.addEventListener("click", () => {
      const instance = add([], true);
      this.changed();
      const firstControl = Object.values(instance.controls).find((c) => c.focusable);
      if (firstControl) firstControl.focusable.focus();
    });
    if (!answered.length) add([], true);
    section.append(list, addButton);
    this.controls[item.linkId] = group;
    return section;
  }

  relabel(group) {
    group.instances.forEach((instance, n) => {
      const level = instance.controls.level && instance.controls.level.get();
      const code = instance.controls.code && instance.controls.code.get();
      const name = level ? level.valueString : code ? code.valueCoding.display : `${n + 1}`;
      instance.legend.textContent = `${group.item.text} ${name}`;
    });
  }

  changed() {
    this.refresh();
    this.onChange();
  }

  /* enableWhen and calculated items. */
  refresh() {
    for (const control of Object.values(this.controls)) {
      const item = control.item;
      if (item.enableWhen) {
        const enabled = item.enableWhen.some((rule) => {
          const other = this.controls[rule.question];
          const value = other && other.get && other.get();
          return value && value.valueCoding && value.valueCoding.code === rule.answerCoding.code;
        });
        control.wrapper.hidden = !enabled;
        control.enabled = enabled;
      }
    }
    const total = this.controls.total;
    if (total && total.output) {
      const scored = Object.values(this.controls).filter((c) => c.item.type === "choice" && c.item.code && c.get);
      const values = scored.map((c) => c.get()).filter(Boolean);
      const points = values.map((v) => Number((v.valueCoding.extension || []).find((e) => e.url === ORDINAL)?.valueDecimal ?? 0));
      const sum = points.reduce((a, b) => a + b, 0);
      if (values.length === scored.length) {
        total.output.textContent = String(sum);
        this.controls.category.output.textContent = sum <= 6 ? "stable" : sum <= 12 ? "potentially unstable" : "unstable";
      } else {
        const open = scored.length - values.length;
        total.output.textContent = `${sum} so far (${open} component${open === 1 ? "" : "s"} open)`;
        this.controls.category.output.textContent = "incomplete";
      }
    }
  }

  /* QuestionnaireResponse items; `where` names each control like the service's problems do. */
  collect(where) {
    const items = [];
    for (const [linkId, control] of Object.entries(this.controls)) {
      if (control.instances) {
        control.instances.forEach((instance, n) => {
          const sub = instance.collect(`${where}/${linkId}[${n + 1}]`);
          if (sub.length) items.push({ linkId, item: sub });
        });
        continue;
      }
      control.where = `${where}/${linkId}`;
      if (control.wrapper) control.wrapper.dataset.where = control.where;
      if (control.enabled === false) continue;
      const value = control.get();
      if (value) items.push({ linkId, answer: [value] });
    }
    return items;
  }

  all() {
    const found = [];
    for (const control of Object.values(this.controls)) {
      if (control.instances) control.instances.forEach((i) => found.push(...i.all()));
      else found.push(control);
    }
    return found;
  }
}

function answerFor(option) {
  if (option.valueCoding) return { valueCoding: option.valueCoding };
  if (option.valueString !== undefined) return { valueString: option.valueString };
  return { valueInteger: option.valueInteger };
}

/* A Questionnaire as a <section>; `.response()` gives the QuestionnaireResponse. */
class QuestionnaireForm {
  constructor(questionnaire, prefill, onChange, headingId) {
    this.questionnaire = questionnaire;
    this.root = new Instance(questionnaire.id, questionnaire.item || [], (prefill && prefill.item) || [], onChange);
    this.heading = el("h2", { id: headingId, tabindex: "-1", text: questionnaire.title });
    this.node = el("section", { className: "questionnaire", "aria-labelledby": headingId }, this.heading, this.root.node);
  }

  response(patientId) {
    return {
      resourceType: "QuestionnaireResponse",
      questionnaire: this.questionnaire.url,
      status: "completed",
      subject: { reference: `Patient/${patientId}` },
      item: this.root.collect(this.questionnaire.id),
    };
  }

  /* Mark the controls a problem names; returns the first control marked. */
  mark(problems) {
    let first = null;
    for (const control of this.root.all()) {
      if (!control.hint) continue;
      const mine = problems.filter((p) => p.where === control.where);
      control.hint.hidden = mine.length === 0;
      control.hint.textContent = mine.map((p) => p.message).join("; ");
      if (control.invalid) control.invalid(mine.length > 0);
      else if (control.focusable) {
        if (mine.length) control.focusable.setAttribute("aria-invalid", "true");
        else control.focusable.removeAttribute("aria-invalid");
      }
      if (mine.length && !first) first = control;
    }
    return first;
  }
}

window.QuestionnaireForm = QuestionnaireForm;
