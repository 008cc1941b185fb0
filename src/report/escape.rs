//! Escaping for the report formats.
//!
//! Everything a report shows comes from a journal, and a journal holds text from the
//! world (error messages, observed values, runbook strings): a step summary containing
//! `<script>` must come out as text, and a control character must not make a JUnit file
//! unreadable to the CI that collects it.

/// Text for HTML content and attribute values (double-quoted).
pub fn html(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if is_xml_char(c) => o.push(c),
            _ => o.push('\u{fffd}'),
        }
    }
    o
}

/// Text for XML content and attribute values: as [`html`], and characters XML 1.0
/// forbids (most C0 controls) become U+FFFD so the document stays well-formed.
pub fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // Attribute values normalise raw newlines and tabs to spaces: keep them.
            '\n' => o.push_str("&#10;"),
            '\r' => o.push_str("&#13;"),
            '\t' => o.push_str("&#9;"),
            c if is_xml_char(c) => o.push(c),
            _ => o.push('\u{fffd}'),
        }
    }
    o
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// Text for one line of Markdown (a table cell or a list item): no raw HTML, no table
/// breaks, no line breaks, and no emphasis or link syntax taken from the data.
pub fn md(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // Markdown reads `<` as HTML (or an autolink) only before a letter, `/`, `!`
            // or `?`: "lag 264ms <= 5s" stays as written.
            '<' if !chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || matches!(n, '/' | '!' | '?')) =>
            {
                o.push('<')
            }
            // `>` only matters at the start of a line (a quote), and this text never
            // starts one: leaving it makes "a -> b" read as written.
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '|' => o.push_str("\\|"),
            // `_` is left alone: GFM never reads it as emphasis inside a word, and
            // identifiers full of backslashes read badly in the raw file.
            '\\' | '`' | '*' | '[' | ']' => {
                o.push('\\');
                o.push(c);
            }
            '\n' | '\r' | '\t' => o.push(' '),
            c if c.is_control() => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

/// Code span in Markdown: backticks long enough that the text cannot close it. Tables
/// still need `|` escaped inside code spans (GFM splits cells first).
pub fn md_code(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect::<String>()
        .replace('|', "\\|");
    let mut longest = 0;
    let mut run = 0;
    for c in clean.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest + 1);
    let pad = if clean.starts_with('`') || clean.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{clean}{pad}{fence}")
}

/// Cuts `s` to at most `max` characters, ending with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut o: String = s.chars().take(max.saturating_sub(1)).collect();
    o.push('…');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_and_xml_escape_markup_and_controls() {
        assert_eq!(
            html("<script>alert('x' & \"y\")</script>"),
            "&lt;script&gt;alert(&#39;x&#39; &amp; &quot;y&quot;)&lt;/script&gt;"
        );
        assert_eq!(xml("a\u{1}b\nc"), "a\u{fffd}b&#10;c");
    }

    #[test]
    fn markdown_text_cannot_break_a_table_or_inject_html() {
        assert_eq!(
            md("a|b <img> *x* [l](u)\nz -> y <= 1 </p>"),
            "a\\|b &lt;img> \\*x\\* \\[l\\](u) z -> y <= 1 &lt;/p>"
        );
        assert_eq!(md_code("a`b|c"), "``a`b\\|c``");
        assert_eq!(md_code("plain"), "`plain`");
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("ab", 4), "ab");
        assert_eq!(truncate("ééééé", 3), "éé…");
    }
}
