//! The benchmark's one table: what was measured, against which baseline, the ratio, and the goal it is held to.

/// A goal a ratio or a value is held to.
#[derive(Clone, Copy)]
pub enum Goal {
    /// The ratio should be at least this.
    RatioAtLeast(f64),
    /// The value (in the row's unit) should be at most this.
    ValueAtMost(f64),
}

/// One measured line.
struct Row {
    section: &'static str,
    what: String,
    value: f64,
    unit: &'static str,
    /// The baseline's value, in the same unit, and what it is.
    baseline: Option<(f64, String)>,
    goal: Option<Goal>,
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        self.baseline
            .as_ref()
            .filter(|(b, _)| *b > 0.0)
            .map(|(b, _)| self.value / b)
    }

    fn verdict(&self) -> String {
        match self.goal {
            None => String::new(),
            Some(Goal::RatioAtLeast(min)) => match self.ratio() {
                Some(r) if r >= min => format!(">= {min}x: met"),
                Some(_) => format!(">= {min}x: NOT MET"),
                None => format!(">= {min}x: no baseline"),
            },
            Some(Goal::ValueAtMost(max)) if self.value <= max => format!("<= {max} {}: met", self.unit),
            Some(Goal::ValueAtMost(max)) => format!("<= {max} {}: NOT MET", self.unit),
        }
    }
}

/// Rows in the order they were measured.
#[derive(Default)]
pub struct Table {
    rows: Vec<Row>,
}

fn figure(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

impl Table {
    /// A row whose value is compared with a baseline.
    pub fn ratio(
        &mut self,
        section: &'static str,
        what: impl Into<String>,
        value: (f64, &'static str),
        baseline: (f64, impl Into<String>),
        goal: Option<Goal>,
    ) {
        self.value(section, what, value, goal);
        if let Some(row) = self.rows.last_mut() {
            row.baseline = Some((baseline.0, baseline.1.into()));
        }
    }

    /// A line of text in a section: how it was measured.
    pub fn note(&mut self, section: &'static str, text: impl Into<String>) {
        self.value(section, text, (f64::NAN, ""), None);
    }

    /// A row with a value only.
    pub fn value(
        &mut self,
        section: &'static str,
        what: impl Into<String>,
        (value, unit): (f64, &'static str),
        goal: Option<Goal>,
    ) {
        self.rows.push(Row {
            section,
            what: what.into(),
            value,
            unit,
            baseline: None,
            goal,
        });
    }

    pub fn print(&self) {
        let what_width = self
            .rows
            .iter()
            .filter(|r| !r.value.is_nan())
            .map(|r| r.what.chars().count())
            .max()
            .unwrap_or(10)
            .max(10);
        let base_width = self
            .rows
            .iter()
            .filter_map(|r| r.baseline.as_ref().map(|(_, name)| name.chars().count() + 12))
            .max()
            .unwrap_or(10);
        // Sections in the order they first appear, each row under its own.
        let mut sections: Vec<&str> = Vec::new();
        for row in &self.rows {
            if !sections.contains(&row.section) {
                sections.push(row.section);
            }
        }
        let ordered = sections
            .iter()
            .flat_map(|s| self.rows.iter().filter(move |r| r.section == *s));
        let mut section = "";
        for row in ordered {
            if row.section != section {
                section = row.section;
                println!("\n{section}");
                println!(
                    "  {:<what_width$}  {:>16}  {:<base_width$}  {:>8}  goal",
                    "measure", "value", "baseline", "ratio"
                );
            }
            if row.value.is_nan() {
                println!("  ({})", row.what);
                continue;
            }
            let value = format!("{} {}", figure(row.value), row.unit);
            let baseline = row
                .baseline
                .as_ref()
                .map(|(b, name)| format!("{} {}", figure(*b), name))
                .unwrap_or_default();
            let ratio = row.ratio().map(|r| format!("{r:.2}x")).unwrap_or_default();
            println!(
                "  {:<what_width$}  {:>16}  {:<base_width$}  {:>8}  {}",
                row.what,
                value,
                baseline,
                ratio,
                row.verdict()
            );
        }
    }
}
