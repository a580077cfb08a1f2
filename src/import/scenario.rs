//! Writing the imported scenario as TOML text, with comments where import explains or asks.

use std::fmt::Write;

#[derive(Debug, Default)]
pub(crate) struct ScenarioOut {
    pub comments: Vec<String>,
    pub name: String,
    pub description: String,
    pub sqlite: Vec<(String, toml::Value, Option<String>)>,
    pub sqlite_comments: Vec<String>,
    pub matrix: Vec<(String, Vec<String>)>,
    /// `[[when]]` entries: the app time measured in other traced configurations.
    pub when: Vec<WhenOut>,
    pub setup_sql: Vec<String>,
    pub setup_comments: Vec<String>,
    pub populate: Vec<PopulateOut>,
    pub groups: Vec<GroupOut>,
}

#[derive(Debug)]
pub(crate) struct WhenOut {
    pub comment: String,
    pub matches: Vec<(String, String)>,
    pub set: Vec<(String, f64)>,
    pub why: String,
}

#[derive(Debug)]
pub(crate) struct PopulateOut {
    /// Where the values and sizes came from (comment lines above the entry).
    pub comments: Vec<String>,
    pub table: String,
    pub rows: u64,
    pub columns: Vec<String>,
    pub values: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct GroupOut {
    pub name: String,
    pub comments: Vec<String>,
    pub workers: usize,
    pub isolation: &'static str,
    pub connection: &'static str,
    /// `queue` for a process group (None: the per-process default, not written).
    pub queue: Option<&'static str>,
    /// `keep_alive_inline` (a server that serves a connection's requests in a row).
    pub keep_alive_inline: Option<u32>,
    pub think_time: Option<String>,
    pub scripts: Vec<ScriptOut>,
}

#[derive(Debug, Default)]
pub(crate) struct ScriptOut {
    pub name: String,
    pub weight: usize,
    pub comments: Vec<String>,
    pub steps: Vec<StepOut>,
}

#[derive(Debug)]
pub(crate) enum StepKind {
    Sql { sql: String, params: Vec<toml::Value> },
    Begin(&'static str),
    Commit(bool),
}

#[derive(Debug)]
pub(crate) struct StepOut {
    pub kind: StepKind,
    pub app_time: Option<String>,
}

fn s(v: &str) -> String {
    toml::Value::String(v.to_string()).to_string()
}

fn comment(out: &mut String, indent: &str, text: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "{indent}# {line}");
    }
}

impl ScenarioOut {
    pub(crate) fn render(&self) -> String {
        let mut o = String::new();
        for c in &self.comments {
            comment(&mut o, "", c);
        }
        let _ = writeln!(o, "name = {}", s(&self.name));
        let _ = writeln!(o, "description = {}", s(&self.description));
        o.push_str("duration = \"10s\"\nwarmup = \"1s\"\nseed = 42\n\n[sqlite]\n");
        for c in &self.sqlite_comments {
            comment(&mut o, "", c);
        }
        for (k, v, note) in &self.sqlite {
            let _ = write!(o, "{k} = {v}");
            if let Some(n) = note {
                let _ = write!(o, "  # {n}");
            }
            o.push('\n');
        }
        if !self.matrix.is_empty() {
            o.push_str(
                "\n# The first value of each axis is what the app used (the baseline of the ratios).\n[matrix]\n",
            );
            for (k, vs) in &self.matrix {
                let items: Vec<String> = vs.iter().map(|v| s(v)).collect();
                let _ = writeln!(o, "{k} = [{}]", items.join(", "));
            }
        }
        for w in &self.when {
            o.push_str("\n[[when]]\n");
            comment(&mut o, "", &w.comment);
            let m: Vec<String> = w.matches.iter().map(|(k, v)| format!("{k} = {}", s(v))).collect();
            let _ = writeln!(o, "match = {{ {} }}", m.join(", "));
            let set: Vec<String> = w.set.iter().map(|(k, v)| format!("{} = {v:?}", s(k))).collect();
            let _ = writeln!(o, "set = {{ {} }}", set.join(", "));
            let _ = writeln!(o, "why = {}", s(&w.why));
        }
        o.push_str("\n[setup]\n");
        for c in &self.setup_comments {
            comment(&mut o, "", c);
        }
        let sql = self
            .setup_sql
            .iter()
            .map(|q| format!("{};", q.trim_end_matches(';')))
            .collect::<Vec<_>>()
            .join("\n");
        if sql.contains("'''") {
            let _ = writeln!(o, "sql = {}", s(&sql));
        } else {
            let _ = writeln!(o, "sql = '''\n{sql}\n'''");
        }
        if !self.populate.is_empty() {
            o.push_str("populate = [\n");
            for p in &self.populate {
                for c in &p.comments {
                    comment(&mut o, "  ", c);
                }
                let cols: Vec<String> = p.columns.iter().map(|c| s(c)).collect();
                let vals: Vec<String> = p.values.iter().map(|c| s(c)).collect();
                let _ = writeln!(
                    o,
                    "  {{ table = {}, rows = {}, columns = [{}], values = [{}] }},",
                    s(&p.table),
                    p.rows,
                    cols.join(", "),
                    vals.join(", ")
                );
            }
            o.push_str("]\n");
        }
        for g in &self.groups {
            o.push_str("\n[[group]]\n");
            for c in &g.comments {
                comment(&mut o, "", c);
            }
            let _ = writeln!(o, "name = {}", s(&g.name));
            let _ = writeln!(o, "workers = {}", g.workers);
            let _ = writeln!(o, "isolation = {}", s(g.isolation));
            let _ = writeln!(o, "connection = {}", s(g.connection));
            if let Some(q) = g.queue {
                let _ = writeln!(o, "queue = {}", s(q));
            }
            if let Some(n) = g.keep_alive_inline {
                let _ = writeln!(o, "keep_alive_inline = {n}");
            }
            o.push_str("# Transactions are the app's own, as blocks inside the scripts.\ntransaction = \"none\"\n");
            if let Some(t) = &g.think_time {
                let _ = writeln!(o, "think_time = {}", s(t));
            }
            for sc in &g.scripts {
                o.push_str("\n[[group.script]]\n");
                for c in &sc.comments {
                    comment(&mut o, "", c);
                }
                let _ = writeln!(o, "name = {}", s(&sc.name));
                let _ = writeln!(o, "weight = {}", sc.weight);
                o.push_str("steps = [\n");
                for st in &sc.steps {
                    let mut fields: Vec<String> = Vec::new();
                    match &st.kind {
                        StepKind::Sql { sql, params } => {
                            fields.push(format!("sql = {}", s(sql)));
                            if !params.is_empty() {
                                let ps: Vec<String> = params.iter().map(ToString::to_string).collect();
                                fields.push(format!("params = [{}]", ps.join(", ")));
                            }
                        }
                        StepKind::Begin(mode) => fields.push(format!("begin = {}", s(mode))),
                        StepKind::Commit(c) => fields.push(format!("commit = {c}")),
                    }
                    if let Some(t) = &st.app_time {
                        fields.push(format!("app_time = {}", s(t)));
                    }
                    let _ = writeln!(o, "  {{ {} }},", fields.join(", "));
                }
                o.push_str("]\n");
            }
        }
        o
    }
}
