//! `#[derive(Fields)]` on a kind's typed spec model: an enum with one variant per field, named
//! `<Model>Field`, so that a kind's `update` matches the attributes that changed exhaustively
//! (a new attribute does not compile until `update` says what it does with it).
//!
//! The enum gets `ALL` (every variant, in field order), `name()` (the attribute name: the
//! field's, or its `#[serde(rename = "...")]`) and `of(name)`; the model implements
//! `cruddur_infra::provider::Fields` with it.
//!
//! `#[derive(Planned)]` on a model `Foo` (the spec and every block in it) writes `FooPlanned`,
//! the same fields with each value as a plan holds it (`<T as Plannable>::Planned`: a scalar
//! becomes `Known<T>`, a list or map may be unknown as a whole and item by item, a block field
//! by field), and implements `Plannable` and `HasPlan` for `Foo`. A field's serde settings
//! carry over where the twin can keep them (`rename`, `default`); any other is refused, so a
//! setting cannot be dropped unseen.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::quote;
use syn::{Data, DeriveInput, Fields, Ident, LitStr, parse_macro_input};

#[proc_macro_derive(Fields)]
pub fn derive_fields(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(input, "derive(Fields) takes a struct with named fields"));
    };
    let Fields::Named(named) = &data.fields else {
        return Err(syn::Error::new_spanned(input, "derive(Fields) takes a struct with named fields"));
    };
    let model = &input.ident;
    let vis = &input.vis;
    let field_enum = Ident::new(&format!("{model}Field"), model.span());
    let mut variants = Vec::new();
    let mut names = Vec::new();
    for field in &named.named {
        let ident = field.ident.as_ref().expect("named fields have names");
        let name = match serde_rename(&field.attrs)? {
            Some(renamed) => renamed,
            None => ident.to_string().trim_start_matches("r#").to_string(),
        };
        variants.push(Ident::new(&camel(&ident.to_string()), Span::call_site()));
        names.push(LitStr::new(&name, Span::call_site()));
    }
    let doc = format!("The attributes of [`{model}`], one variant per field.");
    Ok(quote! {
        #[doc = #doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #vis enum #field_enum {
            #(#variants,)*
        }

        impl #field_enum {
            /// Every attribute, in the model's field order.
            pub const ALL: &'static [Self] = &[#(Self::#variants,)*];

            /// The attribute's name in specs and plans.
            pub fn name(self) -> &'static str {
                match self {
                    #(Self::#variants => #names,)*
                }
            }

            /// The attribute called `name`, if the model has one.
            pub fn of(name: &str) -> Option<Self> {
                match name {
                    #(#names => Some(Self::#variants),)*
                    _ => None,
                }
            }
        }

        impl crate::provider::Fields for #model {
            type Field = #field_enum;

            fn field(name: &str) -> Option<Self::Field> {
                #field_enum::of(name)
            }

            fn names() -> Vec<&'static str> {
                #field_enum::ALL.iter().map(|f| f.name()).collect()
            }
        }
    })
}

#[proc_macro_derive(Planned)]
pub fn derive_planned(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand_planned(&input) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand_planned(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(input, "derive(Planned) takes a struct with named fields"));
    };
    let Fields::Named(named) = &data.fields else {
        return Err(syn::Error::new_spanned(input, "derive(Planned) takes a struct with named fields"));
    };
    let model = &input.ident;
    let vis = &input.vis;
    let twin = Ident::new(&format!("{model}Planned"), model.span());
    let mut fields = Vec::new();
    for field in &named.named {
        let ident = field.ident.as_ref().expect("named fields have names");
        let fvis = &field.vis;
        let ty = &field.ty;
        let settings = serde_settings(&field.attrs)?;
        let mut attrs = Vec::new();
        if let Some(name) = &settings.rename {
            let name = LitStr::new(name, Span::call_site());
            attrs.push(quote! { #[serde(rename = #name)] });
        }
        if is_option(ty) {
            attrs.push(quote! { #[serde(default, skip_serializing_if = "Option::is_none")] });
        } else if settings.default {
            attrs.push(quote! { #[serde(default)] });
        }
        fields.push(quote! {
            #(#attrs)*
            #fvis #ident: <#ty as crate::provider::Plannable>::Planned,
        });
    }
    let doc = format!("[`{model}`] as a plan holds it: every value may be known only after apply.");
    Ok(quote! {
        #[doc = #doc]
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[allow(dead_code)]
        #vis struct #twin {
            #(#fields)*
        }

        impl crate::provider::Plannable for #model {
            type Planned = crate::provider::Known<#twin>;
        }

        impl crate::provider::HasPlan for #model {
            type Plan = #twin;
        }
    })
}

/// The serde settings of a field that its plan-time twin keeps.
#[derive(Default)]
struct SerdeSettings {
    rename: Option<String>,
    default: bool,
}

fn serde_settings(attrs: &[syn::Attribute]) -> syn::Result<SerdeSettings> {
    let mut out = SerdeSettings::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                let value: LitStr = meta.value()?.parse()?;
                out.rename = Some(value.value());
            } else if meta.path.is_ident("default") && !meta.input.peek(syn::Token![=]) {
                out.default = true;
            } else if meta.path.is_ident("skip_serializing_if") {
                // `Option::is_none` (from `skip_serializing_none`): the twin writes its own.
                let _: syn::Expr = meta.value()?.parse()?;
            } else {
                return Err(meta.error("derive(Planned) cannot carry this serde setting to the plan-time model"));
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// Whether the field's type is written `Option<...>`.
fn is_option(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Path(p) if p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Option"))
}

/// The name `#[serde(rename = "...")]` gives a field, if any.
fn serde_rename(attrs: &[syn::Attribute]) -> syn::Result<Option<String>> {
    let mut renamed = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                let value: LitStr = meta.value()?.parse()?;
                renamed = Some(value.value());
            } else if meta.input.peek(syn::Token![=]) {
                // Another `key = value` setting: skip its value.
                let _: syn::Expr = meta.value()?.parse()?;
            }
            Ok(())
        })?;
    }
    Ok(renamed)
}

/// `cors_rules` -> `CorsRules`.
fn camel(snake: &str) -> String {
    snake
        .trim_start_matches("r#")
        .split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut chars = p.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}
