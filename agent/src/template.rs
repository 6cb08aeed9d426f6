//! Mustache rendering of distributed files: `{{key}}` is replaced by the set's parameter.
//!
//! Values are inserted verbatim (no HTML escaping: these are configuration files, not web
//! pages), and a tag without a parameter is an error, never a silently blank line.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use ramhorns::encoding::Encoder;
use ramhorns::{Content, Template};

/// Why a template could not be rendered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("template is not valid UTF-8")]
    NotUtf8,
    #[error("template syntax error: {0}")]
    Syntax(String),
    #[error("template uses {} without a parameter", list(.0))]
    MissingParameters(Vec<String>),
}

fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{{{{{n}}}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Renders `source` with `parameters`.
pub fn render(
    source: &[u8],
    parameters: &BTreeMap<String, String>,
) -> Result<Vec<u8>, TemplateError> {
    let source = std::str::from_utf8(source).map_err(|_| TemplateError::NotUtf8)?;
    // ramhorns drops a template's trailing whitespace, and config files need their final
    // newline: keep that tail aside (it holds no tags) and put it back verbatim.
    let body = source.trim_end();
    let tail = &source[body.len()..];
    let template = Template::new(body).map_err(|e| TemplateError::Syntax(format!("{e:?}")))?;
    let content = Parameters {
        values: parameters,
        missing: RefCell::default(),
    };
    let rendered = template.render(&content);
    let missing = content.missing.into_inner();
    if !missing.is_empty() {
        return Err(TemplateError::MissingParameters(
            missing.into_iter().collect(),
        ));
    }
    let mut out = rendered.into_bytes();
    out.extend_from_slice(tail.as_bytes());
    Ok(out)
}

/// The parameters of one file set, as ramhorns content.
struct Parameters<'a> {
    values: &'a BTreeMap<String, String>,
    missing: RefCell<BTreeSet<String>>,
}

impl Parameters<'_> {
    fn write<E: Encoder>(&self, name: &str, encoder: &mut E) -> Result<bool, E::Error> {
        match self.values.get(name) {
            Some(value) => encoder.write_unescaped(value).map(|()| true),
            None => {
                self.missing.borrow_mut().insert(name.to_string());
                Ok(false)
            }
        }
    }
}

impl Content for Parameters<'_> {
    fn render_field_escaped<E: Encoder>(
        &self,
        _hash: u64,
        name: &str,
        encoder: &mut E,
    ) -> Result<bool, E::Error> {
        self.write(name, encoder)
    }

    fn render_field_unescaped<E: Encoder>(
        &self,
        _hash: u64,
        name: &str,
        encoder: &mut E,
    ) -> Result<bool, E::Error> {
        self.write(name, encoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn substitutes_values_verbatim() {
        let out = render(
            b"server = \"{{server}}\"\nport = {{port}}\nq = {{{server}}}\n",
            &params(&[("server", "a&b<c>"), ("port", "8883")]),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "server = \"a&b<c>\"\nport = 8883\nq = a&b<c>\n"
        );
    }

    #[test]
    fn keys_may_contain_dashes() {
        let out = render(b"id={{system-id}}", &params(&[("system-id", "12")])).unwrap();
        assert_eq!(out, b"id=12");
    }

    #[test]
    fn missing_parameter_is_an_error() {
        let err = render(b"{{a}} {{b}} {{a}}", &params(&[])).unwrap_err();
        assert_eq!(
            err,
            TemplateError::MissingParameters(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            err.to_string(),
            "template uses {{a}}, {{b}} without a parameter"
        );
    }

    #[test]
    fn keeps_trailing_whitespace_exactly() {
        for text in ["a\n", "a\n\n", "x={{k}}\r\n", "\n", "", "  lead\t \n"] {
            let want = text.replace("{{k}}", "v");
            let got = render(text.as_bytes(), &params(&[("k", "v")])).unwrap();
            assert_eq!(String::from_utf8(got).unwrap(), want, "for {text:?}");
        }
    }

    #[test]
    fn text_without_tags_is_unchanged() {
        let text = b"plain { text } here\n";
        assert_eq!(render(text, &params(&[])).unwrap(), text);
    }

    #[test]
    fn rejects_binary_and_unclosed_sections() {
        assert_eq!(
            render(&[0xff, 0xfe], &params(&[])),
            Err(TemplateError::NotUtf8)
        );
        assert!(matches!(
            render(b"{{#open}} never {{/closed}}", &params(&[])),
            Err(TemplateError::Syntax(_))
        ));
    }
}
