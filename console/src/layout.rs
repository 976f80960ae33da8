//! The page chrome every page shares: navigation and the stylesheet (small, in the
//! repository, inlined so a page is one request).

use maud::{html, Markup, PreEscaped, DOCTYPE};

const CSS: &str = include_str!("../static/console.css");

pub fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · datasync console" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    a.brand href="/" { "datasync console" }
                    a href="/topics" { "Topics" }
                    a href="/groups" { "Consumer groups" }
                    a href="/connectors" { "Connectors" }
                }
                main { (body) }
            }
        }
    }
}

/// Problems of one form field, shown next to it.
pub fn field_errors(errors: &[String]) -> Markup {
    html! {
        @for e in errors {
            p.field-error role="alert" { (e) }
        }
    }
}
