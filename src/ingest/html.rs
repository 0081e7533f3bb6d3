//! Product descriptions arrive as HTML (`Body (HTML)`, `body_html`): strip them to text.

/// Removes tags (and the contents of `<script>`/`<style>`), decodes common entities,
/// and collapses white space.
pub fn strip_html(html: &str) -> String {
    if !html.contains('<') && !html.contains('&') {
        return collapse(html);
    }
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        text.push_str(&rest[..start]);
        let after = &rest[start..];
        let opens_tag = after[1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!');
        if !opens_tag {
            text.push('<');
            rest = &after[1..];
            continue;
        }
        let Some(end) = after.find('>') else {
            // A lone '<' is text.
            text.push_str(after);
            rest = "";
            break;
        };
        let tag = after[1..end].trim().to_ascii_lowercase();
        rest = &after[end + 1..];
        for skipped in ["script", "style"] {
            if tag.starts_with(skipped) {
                let close = format!("</{skipped}");
                let lower = rest.to_ascii_lowercase();
                rest = match lower.find(&close) {
                    Some(i) => rest[i..]
                        .find('>')
                        .map(|j| &rest[i + j + 1..])
                        .unwrap_or(""),
                    None => "",
                };
            }
        }
        // Block-level tags separate words.
        text.push(' ');
    }
    text.push_str(rest);
    collapse(&decode_entities(&text))
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let end = after.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let name = &after[1..e];
            let ch = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            ch.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_stripped_and_entities_decoded() {
        assert_eq!(
            strip_html(
                "<p>Rich <strong>dark</strong> roast.</p><p>Fish &amp; chips&nbsp;&#8212; ok</p>"
            ),
            "Rich dark roast. Fish & chips — ok"
        );
        assert_eq!(strip_html("a < b and c > d"), "a < b and c > d");
        assert_eq!(
            strip_html("<script>alert(1)</script>Safe<style>p{}</style> text"),
            "Safe text"
        );
        assert_eq!(strip_html("  plain\n text "), "plain text");
    }
}
