//! English text normalisation: digits, symbols and abbreviations become the words a person
//! would say, before the text reaches the phonemizer.
//!
//! Why this layer exists: espeak-ng reads `$3.50` as "dollar three point five zero" and
//! `12/25/2024` as "twelve slash twenty five slash …", and the phonemizer's punctuation split
//! cuts every number at `.`, `,` and `:` (`docs/phonemizer.md` §3, `fixtures/phonemes/README.md`
//! "Numbers"). Peers got this wrong in two ways we must not repeat: words silently dropped
//! (Kokoro-FastAPI #224, #391) and "1.5" read as "one five" (kokoro-onnx #175).
//!
//! # Contract
//!
//! * **Switchable per request.** [`NormalizeOptions::enabled`] `= false` returns the input
//!   unchanged; [`normalize_english`] uses the defaults.
//! * **Deterministic**, std only, no allocation beyond the output and one `Vec<char>`.
//! * **Nothing is dropped silently.** Every input character is either copied unchanged or replaced
//!   by words that read it. The only characters that are replaced by nothing, all on purpose:
//!   * the scheme of a URL (`https://`), unless [`NormalizeOptions::read_url_scheme`] is set, and
//!     a URL's final `/` (a person reads "example dot com", not "h t t p s colon slash slash");
//!   * the period of an abbreviation (`Dr.` → "Doctor"); it is kept when it also ends the
//!     sentence (`etc.` before a capital letter or at the end of the text);
//!   * the `,` thousands separators and the `-`, `/`, `:` inside numbers, dates, times and
//!     phone numbers, which the words replace.
//! * **No ASCII digit survives**: every digit run becomes number words (tested over generated
//!   inputs).
//! * **Sentence and clause punctuation survives** (`. , ; : ! ? …` outside numbers): the
//!   phonemizer turns it into prosody tokens and the chunker splits at it. The normaliser adds
//!   commas in two places only: between the digit groups of a phone number, and before the year
//!   of a month-first date ("March fifteenth, twenty twenty-four").
//! * Anything it does not recognise is copied: letters, unknown symbols, emoji and non-ASCII
//!   digits go to espeak as typed.
//!
//! # How things are read
//!
//! | Input | Output |
//! |---|---|
//! | `42`, `1,234`, `-7` | forty-two, one thousand two hundred thirty-four, minus seven |
//! | `007`, numbers over 15 digits | digit by digit: zero zero seven |
//! | `1.5`, `3.14`, `1.2.3` | one point five, three point one four, one dot two dot three |
//! | `$5.50`, `£1`, `€2.5 million`, `$1.2B`, `50¢` | five dollars and fifty cents, one pound, two point five million euros, one point two billion dollars, fifty cents |
//! | `50%`, `10-20%` | fifty percent, ten to twenty percent |
//! | `2024-03-15`, `3/15/2024`, `March 15, 2024` | March fifteenth, twenty twenty-four |
//! | `15 March 2024` | the fifteenth of March twenty twenty-four |
//! | `3:30 pm`, `15:45`, `12:00`, `9am` | three thirty PM, fifteen forty-five, twelve o'clock, nine AM |
//! | `1st`, `22nd`, `103rd` | first, twenty-second, one hundred third |
//! | `in 1999`, `1999 apples` | in nineteen ninety-nine, one thousand nine hundred ninety-nine apples |
//! | `1900s`, `'90s` | nineteen hundreds, nineties |
//! | `555-123-4567`, `+1 555 123 4567` | five five five, one two three, four five six seven (with "plus one, " first) |
//! | `Dr.`, `St.`, `etc.`, `e.g.`, `vs.` | Doctor/Drive, Saint/Street, et cetera, for example, versus |
//! | `5 km`, `1 kg`, `3 ft`, `20°C` | five kilometers, one kilogram, three feet, twenty degrees Celsius |
//! | `https://example.com/path` | example dot com slash path |
//! | `jane.doe@example.org` | jane dot doe at example dot org |
//! | `&`, `+`, `=`, `#1` | and, plus, equals, number one |
//! | `1-5`, `10–12`, `1999-2005` | one to five, ten to twelve, nineteen ninety-nine to two thousand five |
//! | `1/2`, `3/4`, `1 1/2` | one half, three quarters, one and one half |
//!
//! Years are read as years only in year-like contexts: after a cue word (`in`, `since`, `by`,
//! `from`, `until`, a month name, …), before an era (`BC`, `AD`), or in a range of two years.
//! `AM`/`PM` are written in capitals because espeak spells capitals letter by letter but reads a
//! lowercase `a` as the article.

/// How `a/b/yyyy` dates are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DateOrder {
    /// US order: `3/15/2024` is March 15th. A first field over 12 falls back to day first.
    #[default]
    MonthFirst,
    /// `15/3/2024` is March 15th. A second field over 12 falls back to month first.
    DayFirst,
}

/// Per-request switches of the normaliser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizeOptions {
    /// `false` turns the whole layer off: the text goes to the phonemizer as typed.
    pub enabled: bool,
    /// Read a URL's scheme ("h t t p s colon slash slash example dot com"). Default `false`.
    pub read_url_scheme: bool,
    /// Field order of numeric dates such as `3/15/2024`. `dd.mm.yyyy` is always day first.
    pub date_order: DateOrder,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            read_url_scheme: false,
            date_order: DateOrder::MonthFirst,
        }
    }
}

/// Normalises English text with the default [`NormalizeOptions`].
///
/// See the module documentation for what is read how and for the no-drop guarantee.
pub fn normalize_english(text: &str) -> String {
    normalize_english_with(text, &NormalizeOptions::default())
}

/// Normalises English text; returns the input unchanged when `options.enabled` is false.
pub fn normalize_english_with(text: &str, options: &NormalizeOptions) -> String {
    if !options.enabled {
        return text.to_owned();
    }
    let mut scanner = Scanner {
        chars: text.chars().collect(),
        out: String::with_capacity(text.len() * 2),
        options,
    };
    scanner.run();
    scanner.out
}

// ---------------------------------------------------------------------------------------------
// Number words
// ---------------------------------------------------------------------------------------------

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];
const SCALES: [(u64, &str); 4] = [
    (1_000_000_000_000, "trillion"),
    (1_000_000_000, "billion"),
    (1_000_000, "million"),
    (1_000, "thousand"),
];
/// Longer digit runs are read digit by digit (they are ids, not quantities).
const MAX_CARDINAL_DIGITS: usize = 15;

/// 0..=99 in words, with a hyphen between tens and units ("forty-two").
fn below_hundred(n: u64) -> String {
    let n = n as usize % 100;
    if n < 20 {
        ONES[n].to_owned()
    } else if n.is_multiple_of(10) {
        TENS[n / 10].to_owned()
    } else {
        format!("{}-{}", TENS[n / 10], ONES[n % 10])
    }
}

/// 0..=999 in words, American style (no "and").
fn below_thousand(n: u64) -> String {
    let (hundreds, rest) = (n / 100, n % 100);
    match (hundreds, rest) {
        (0, _) => below_hundred(rest),
        (h, 0) => format!("{} hundred", ONES[h as usize]),
        (h, r) => format!("{} hundred {}", ONES[h as usize], below_hundred(r)),
    }
}

/// A cardinal in words: 1234567 → "one million two hundred thirty-four thousand five hundred
/// sixty-seven". Valid for n < 10^15.
fn cardinal(mut n: u64) -> String {
    if n < 1000 {
        return below_thousand(n);
    }
    let mut parts = Vec::new();
    for (scale, name) in SCALES {
        if n >= scale {
            parts.push(format!("{} {name}", below_thousand(n / scale)));
            n %= scale;
        }
    }
    if n > 0 {
        parts.push(below_thousand(n));
    }
    parts.join(" ")
}

/// Each digit as a word: "123" → "one two three".
fn digit_words(digits: &str) -> String {
    let words: Vec<&str> = digits
        .chars()
        .filter_map(|c| c.to_digit(10))
        .map(|d| ONES[d as usize])
        .collect();
    words.join(" ")
}

/// An integer literal (ASCII digits only) in words; leading zeros and very long runs are read
/// digit by digit.
fn integer_words(digits: &str) -> String {
    if (digits.len() > 1 && digits.starts_with('0')) || digits.len() > MAX_CARDINAL_DIGITS {
        return digit_words(digits);
    }
    match digits.parse::<u64>() {
        Ok(n) => cardinal(n),
        Err(_) => digit_words(digits),
    }
}

/// Replaces the last word of `words` (after the last space or hyphen) by `f(last)`.
fn map_last_word(words: &str, f: impl Fn(&str) -> String) -> String {
    let cut = words.rfind([' ', '-']).map_or(0, |p| p + 1);
    format!("{}{}", &words[..cut], f(&words[cut..]))
}

/// "twenty-two" → "twenty-second", "one hundred three" → "one hundred third".
fn ordinal_of(words: &str) -> String {
    map_last_word(words, |last| match last {
        "one" => "first".to_owned(),
        "two" => "second".to_owned(),
        "three" => "third".to_owned(),
        "five" => "fifth".to_owned(),
        "eight" => "eighth".to_owned(),
        "nine" => "ninth".to_owned(),
        "twelve" => "twelfth".to_owned(),
        w if w.ends_with('y') => format!("{}ieth", &w[..w.len() - 1]),
        w => format!("{w}th"),
    })
}

/// "nineteen ninety" → "nineteen nineties", "nineteen hundred" → "nineteen hundreds".
fn plural_of(words: &str) -> String {
    map_last_word(words, |last| match last.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None if last.ends_with('x') => format!("{last}es"),
        None => format!("{last}s"),
    })
}

/// A year 1000..=2999 as people say it: 1999 "nineteen ninety-nine", 1905 "nineteen oh five",
/// 1900 "nineteen hundred", 2000 "two thousand", 2005 "two thousand five", 2010 "twenty ten".
fn year_words(year: u64) -> String {
    let (high, low) = (year / 100, year % 100);
    if year.is_multiple_of(1000) || (high.is_multiple_of(10) && low < 10) {
        cardinal(year)
    } else if low == 0 {
        format!("{} hundred", below_hundred(high))
    } else if low < 10 {
        format!("{} oh {}", below_hundred(high), ONES[low as usize])
    } else {
        format!("{} {}", below_hundred(high), below_hundred(low))
    }
}

/// "1" → "one half"/"halves" style fraction words; `None` when the denominator has no common
/// fraction name (then the caller reads "X slash Y").
fn fraction_words(numerator: u64, denominator: u64) -> Option<String> {
    let named = (2..=20).contains(&denominator) || [32, 64, 100].contains(&denominator);
    if numerator == 0 || !named {
        return None;
    }
    let singular = match denominator {
        2 => "half".to_owned(),
        4 => "quarter".to_owned(),
        d => ordinal_of(&cardinal(d)),
    };
    let name = match (numerator, denominator) {
        (1, _) => singular,
        (_, 2) => "halves".to_owned(),
        _ => format!("{singular}s"),
    };
    Some(format!("{} {name}", cardinal(numerator)))
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A full month name or its abbreviation (`Jan`, `Sept`), case as typed with a capital first
/// letter; returns the month number 1..=12.
fn month_number(word: &str) -> Option<usize> {
    if !word.starts_with(|c: char| c.is_ascii_uppercase()) {
        return None;
    }
    if word == "Sept" {
        return Some(9);
    }
    MONTHS
        .iter()
        .position(|m| *m == word || (word.len() == 3 && m.starts_with(word) && word != "May"))
        .map(|p| p + 1)
}

/// "March fifteenth, twenty twenty-four" (the form used for every numeric date).
fn date_words(year: Option<u64>, month: usize, day: u64, comma_before_year: bool) -> String {
    let mut words = format!("{} {}", MONTHS[month - 1], ordinal_of(&cardinal(day)));
    if let Some(year) = year {
        words.push_str(if comma_before_year { ", " } else { " " });
        words.push_str(&year_words(year));
    }
    words
}

// ---------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------

/// Words after which a 4-digit number 1000..=2099 is read as a year (lower case).
const YEAR_CUES: [&str; 23] = [
    "in", "since", "by", "from", "until", "till", "year", "circa", "during", "before", "after", "around",
    "early", "late", "mid", "spring", "summer", "autumn", "fall", "winter", "between", "born", "died",
];
/// Words that join two years ("between 1939 and 1945", "from 1999 to 2005").
const YEAR_JOINERS: [&str; 4] = ["and", "to", "through", "or"];
const ERAS: [&str; 4] = ["BC", "AD", "BCE", "CE"];

/// Unit abbreviations read after a number: (as typed, singular, plural). Case-sensitive. `m`,
/// `in`, `s`, `h` and `l` are left out on purpose: too often something else.
const UNITS: [(&str, &str, &str); 31] = [
    ("km/h", "kilometer per hour", "kilometers per hour"),
    ("km", "kilometer", "kilometers"),
    ("cm", "centimeter", "centimeters"),
    ("mm", "millimeter", "millimeters"),
    ("kg", "kilogram", "kilograms"),
    ("mg", "milligram", "milligrams"),
    ("g", "gram", "grams"),
    ("lbs", "pound", "pounds"),
    ("lb", "pound", "pounds"),
    ("oz", "ounce", "ounces"),
    ("ft", "foot", "feet"),
    ("yd", "yard", "yards"),
    ("mi", "mile", "miles"),
    ("mph", "mile per hour", "miles per hour"),
    ("kph", "kilometer per hour", "kilometers per hour"),
    ("mL", "milliliter", "milliliters"),
    ("ml", "milliliter", "milliliters"),
    ("ms", "millisecond", "milliseconds"),
    ("Hz", "hertz", "hertz"),
    ("kHz", "kilohertz", "kilohertz"),
    ("MHz", "megahertz", "megahertz"),
    ("GHz", "gigahertz", "gigahertz"),
    ("KB", "kilobyte", "kilobytes"),
    ("kB", "kilobyte", "kilobytes"),
    ("MB", "megabyte", "megabytes"),
    ("GB", "gigabyte", "gigabytes"),
    ("TB", "terabyte", "terabytes"),
    ("kW", "kilowatt", "kilowatts"),
    ("kWh", "kilowatt hour", "kilowatt hours"),
    ("°C", "degree Celsius", "degrees Celsius"),
    ("°F", "degree Fahrenheit", "degrees Fahrenheit"),
];

/// A currency sign: (sign, unit, units, sub-unit, sub-units); `None` sub-units read decimals
/// with "point".
type Currency = (
    char,
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
);
const CURRENCIES: [Currency; 5] = [
    ('$', "dollar", "dollars", Some(("cent", "cents"))),
    ('£', "pound", "pounds", Some(("penny", "pence"))),
    ('€', "euro", "euros", Some(("cent", "cents"))),
    ('¥', "yen", "yen", None),
    ('₹', "rupee", "rupees", Some(("paisa", "paise"))),
];

/// Scale words after an amount: spelled out, or one letter glued to the number (`$5k`, `$1.2B`).
const SCALE_WORDS: [&str; 4] = ["thousand", "million", "billion", "trillion"];
const SCALE_SUFFIXES: [(&str, &str); 7] = [
    ("k", "thousand"),
    ("K", "thousand"),
    ("M", "million"),
    ("m", "million"),
    ("bn", "billion"),
    ("B", "billion"),
    ("T", "trillion"),
];

/// How an abbreviation's period is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AbbrevKind {
    /// Precedes what it qualifies (`Mr. Smith`, `vs. Frazier`, `e.g. apples`): the period is
    /// replaced even before a capital letter, and kept only at the end of a line or the text.
    Prefix,
    /// Can end a sentence (`etc.`): the period is kept when a sentence ends there.
    Plain,
}

/// (as typed, expansion, kind). Entries written in lower case also match with a capital first
/// letter; the others match exactly. `Dr.` and `St.` are decided by context
/// ([`Scanner::street_or_title`]).
const ABBREVIATIONS: [(&str, &str, AbbrevKind); 27] = [
    ("Mr.", "Mister", AbbrevKind::Prefix),
    ("Mrs.", "Missus", AbbrevKind::Prefix),
    ("Ms.", "Miz", AbbrevKind::Prefix),
    ("Prof.", "Professor", AbbrevKind::Prefix),
    ("Mt.", "Mount", AbbrevKind::Prefix),
    ("Capt.", "Captain", AbbrevKind::Prefix),
    ("Gen.", "General", AbbrevKind::Prefix),
    ("Sgt.", "Sergeant", AbbrevKind::Prefix),
    ("Rev.", "Reverend", AbbrevKind::Prefix),
    ("Jr.", "Junior", AbbrevKind::Plain),
    ("Sr.", "Senior", AbbrevKind::Plain),
    ("Ave.", "Avenue", AbbrevKind::Plain),
    ("Blvd.", "Boulevard", AbbrevKind::Plain),
    ("Rd.", "Road", AbbrevKind::Plain),
    ("Dept.", "Department", AbbrevKind::Plain),
    ("Inc.", "Incorporated", AbbrevKind::Plain),
    ("Ltd.", "Limited", AbbrevKind::Plain),
    ("Corp.", "Corporation", AbbrevKind::Plain),
    ("Fig.", "Figure", AbbrevKind::Plain),
    ("etc.", "et cetera", AbbrevKind::Plain),
    ("e.g.", "for example", AbbrevKind::Prefix),
    ("i.e.", "that is", AbbrevKind::Prefix),
    ("vs.", "versus", AbbrevKind::Prefix),
    ("vs", "versus", AbbrevKind::Prefix),
    ("approx.", "approximately", AbbrevKind::Prefix),
    ("a.m.", "AM", AbbrevKind::Plain),
    ("p.m.", "PM", AbbrevKind::Plain),
];

/// Top-level domains that make a bare `name.tld` a web address.
const TLDS: [&str; 16] = [
    "com", "org", "net", "edu", "gov", "io", "dev", "ai", "co", "uk", "de", "fr", "eu", "info", "app", "us",
];

/// How a separator inside a URL or email is read.
fn address_symbol(c: char) -> Option<&'static str> {
    Some(match c {
        '.' => "dot",
        '/' => "slash",
        '-' => "dash",
        '_' => "underscore",
        ':' => "colon",
        '?' => "question mark",
        '=' => "equals",
        '&' => "and",
        '#' => "hash",
        '%' => "percent",
        '~' => "tilde",
        '@' => "at",
        '+' => "plus",
        _ => return None,
    })
}

/// Characters stripped from the end of a URL or email because they end the sentence around it.
fn is_trailing_punct(c: char) -> bool {
    matches!(
        c,
        '.' | ',' | ';' | ':' | '!' | '?' | ')' | ']' | '}' | '\'' | '"' | '”' | '’' | '»'
    )
}

// ---------------------------------------------------------------------------------------------
// The scanner
// ---------------------------------------------------------------------------------------------

/// A recognised span `start..end` of the input and the words that replace it.
#[derive(Debug)]
struct Replacement {
    end: usize,
    words: String,
}

/// A number literal: digits, optional `,` thousands groups, optional decimals.
#[derive(Debug)]
struct NumberLiteral {
    end: usize,
    /// Integer digits without separators.
    int: String,
    /// Decimal digits, if any.
    frac: Option<String>,
    grouped: bool,
}

impl NumberLiteral {
    fn words(&self) -> String {
        let mut words = integer_words(&self.int);
        if let Some(frac) = &self.frac {
            words.push_str(" point ");
            words.push_str(&digit_words(frac));
        }
        words
    }

    fn is_one(&self) -> bool {
        self.int == "1" && self.frac.is_none()
    }

    /// The value of a plain integer literal (no decimals, no leading zero).
    fn integer(&self) -> Option<u64> {
        if self.frac.is_some() || (self.int.len() > 1 && self.int.starts_with('0')) {
            return None;
        }
        self.int.parse().ok()
    }

    /// The year of a plain 4-digit literal 1000..=2099.
    fn year(&self) -> Option<u64> {
        let value = self.integer()?;
        (!self.grouped && self.int.len() == 4 && (1000..=2099).contains(&value)).then_some(value)
    }
}

struct Scanner<'o> {
    chars: Vec<char>,
    out: String,
    options: &'o NormalizeOptions,
}

impl Scanner<'_> {
    /// The first category that recognises a span at `i`, tried in priority order.
    fn recognise(&self, i: usize) -> Option<Replacement> {
        let matchers: [fn(&Self, usize) -> Option<Replacement>; 18] = [
            Self::url,
            Self::email,
            Self::phone,
            Self::iso_date,
            Self::numeric_date,
            Self::time,
            Self::money,
            Self::decade,
            Self::day_month_date,
            Self::ordinal,
            Self::month_date,
            Self::fraction,
            Self::bare_decimal,
            Self::number_expression,
            Self::hash_number,
            Self::number_abbreviation,
            Self::abbreviation,
            Self::symbol,
        ];
        matchers.iter().find_map(|matcher| matcher(self, i))
    }

    fn run(&mut self) {
        let mut i = 0;
        while i < self.chars.len() {
            if let Some(r) = self.recognise(i) {
                debug_assert!(r.end > i, "a matcher must consume at least one character");
                self.emit_words(&r.words, r.end);
                i = r.end.max(i + 1);
            } else if self.chars[i].is_alphabetic() {
                // Copy the whole word so that no matcher starts in the middle of it.
                while i < self.chars.len() && self.chars[i].is_alphabetic() {
                    self.out.push(self.chars[i]);
                    i += 1;
                }
            } else {
                self.out.push(self.chars[i]);
                i += 1;
            }
        }
    }

    /// Appends words, with a space on each side where they would otherwise touch a letter or
    /// digit.
    fn emit_words(&mut self, words: &str, next: usize) {
        if self.out.chars().next_back().is_some_and(char::is_alphanumeric) {
            self.out.push(' ');
        }
        self.out.push_str(words);
        if self.at(next).is_some_and(char::is_alphanumeric) {
            self.out.push(' ');
        }
    }

    // ---- small helpers ----

    fn at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    fn is(&self, i: usize, f: impl Fn(char) -> bool) -> bool {
        self.at(i).is_some_and(f)
    }

    fn is_digit(&self, i: usize) -> bool {
        self.is(i, |c| c.is_ascii_digit())
    }

    /// No letter or digit right before `i`.
    fn is_word_start(&self, i: usize) -> bool {
        i == 0 || !self.chars[i - 1].is_alphanumeric()
    }

    /// No letter or digit at `i`.
    fn is_word_end(&self, i: usize) -> bool {
        !self.is(i, char::is_alphanumeric)
    }

    fn digits_end(&self, i: usize) -> usize {
        let mut j = i;
        while self.is_digit(j) {
            j += 1;
        }
        j
    }

    fn text(&self, start: usize, end: usize) -> String {
        self.chars[start..end].iter().collect()
    }

    /// The digits `start..end` if there are between `min` and `max` of them and no digit
    /// follows.
    fn digit_run(&self, start: usize, min: usize, max: usize) -> Option<(usize, String)> {
        let end = self.digits_end(start);
        let len = end - start;
        (len >= min && len <= max).then(|| (end, self.text(start, end)))
    }

    fn matches_at(&self, i: usize, pattern: &str) -> bool {
        pattern
            .chars()
            .enumerate()
            .all(|(k, p)| self.at(i + k) == Some(p))
    }

    fn matches_at_ignore_case(&self, i: usize, pattern: &str) -> bool {
        pattern
            .chars()
            .enumerate()
            .all(|(k, p)| self.at(i + k).is_some_and(|c| c.eq_ignore_ascii_case(&p)))
    }

    /// The run of letters and digits ending right before `i`, skipping whitespace first.
    fn previous_word(&self, i: usize) -> Option<String> {
        let mut end = i;
        while end > 0 && self.chars[end - 1].is_whitespace() {
            end -= 1;
        }
        let mut start = end;
        while start > 0 && self.chars[start - 1].is_alphanumeric() {
            start -= 1;
        }
        (start < end).then(|| self.text(start, end))
    }

    /// The run of letters and digits starting after the whitespace at `i`.
    fn next_word(&self, i: usize) -> Option<String> {
        let mut start = i;
        while self.is(start, char::is_whitespace) {
            start += 1;
        }
        let mut end = start;
        while self.is(end, char::is_alphanumeric) {
            end += 1;
        }
        (start < end).then(|| self.text(start, end))
    }

    /// Whether a sentence plausibly ends at `i`: end of text, a line break, or whitespace then
    /// a capital letter.
    fn sentence_ends_at(&self, i: usize) -> bool {
        let mut j = i;
        if j < self.chars.len() && !self.chars[j].is_whitespace() {
            return false;
        }
        while let Some(c) = self.at(j) {
            if c == '\n' {
                return true;
            }
            if !c.is_whitespace() {
                return c.is_uppercase();
            }
            j += 1;
        }
        true
    }

    /// Whether only whitespace up to a line break or the end of the text follows `i`.
    fn line_ends_at(&self, i: usize) -> bool {
        let mut j = i;
        while let Some(c) = self.at(j) {
            if c == '\n' {
                return true;
            }
            if !c.is_whitespace() {
                return false;
            }
            j += 1;
        }
        true
    }

    /// One optional space or tab at `i`.
    fn skip_one_space(&self, i: usize) -> usize {
        if self.is(i, |c| c == ' ' || c == '\u{a0}') {
            i + 1
        } else {
            i
        }
    }

    fn scan_number(&self, i: usize) -> Option<NumberLiteral> {
        let first_end = self.digits_end(i);
        if first_end == i {
            return None;
        }
        let mut int = self.text(i, first_end);
        let mut end = first_end;
        let mut grouped = false;
        if first_end - i <= 3 {
            while self.at(end) == Some(',') && self.digits_end(end + 1) == end + 4 {
                int.push_str(&self.text(end + 1, end + 4));
                end += 4;
                grouped = true;
            }
        }
        let mut frac = None;
        if self.at(end) == Some('.') && self.is_digit(end + 1) {
            let frac_end = self.digits_end(end + 1);
            frac = Some(self.text(end + 1, frac_end));
            end = frac_end;
        }
        Some(NumberLiteral {
            end,
            int,
            frac,
            grouped,
        })
    }

    /// `am`, `pm`, `a.m.`, `p.m.` (any case) at `i`, after one optional space. Returns the end
    /// and "AM"/"PM". A final period that also ends the sentence is left in place.
    fn am_pm(&self, i: usize) -> Option<(usize, &'static str)> {
        let mut j = self.skip_one_space(i);
        let word = match self.at(j).map(|c| c.to_ascii_lowercase()) {
            Some('a') => "AM",
            Some('p') => "PM",
            _ => return None,
        };
        j += 1;
        let dotted = self.at(j) == Some('.');
        if dotted {
            j += 1;
        }
        if !self.is(j, |c| c.eq_ignore_ascii_case(&'m')) {
            return None;
        }
        j += 1;
        if dotted && self.at(j) == Some('.') {
            j += 1;
            if self.sentence_ends_at(j) {
                j -= 1;
            }
        }
        self.is_word_end(j).then_some((j, word))
    }

    // ---- matchers, one per category ----

    /// `https://example.com/path`, `www.example.com`, bare `example.com`.
    fn url(&self, i: usize) -> Option<Replacement> {
        if !self.is_word_start(i) || !self.is(i, char::is_alphabetic) {
            return None;
        }
        let scheme_len = ["https://", "http://", "ftp://"]
            .iter()
            .find(|s| self.matches_at_ignore_case(i, s))
            .map(|s| s.chars().count());
        let mut end = i;
        while self.is(end, |c| !c.is_whitespace()) {
            end += 1;
        }
        while end > i && is_trailing_punct(self.chars[end - 1]) {
            end -= 1;
        }
        if self.chars[i..end].contains(&'@') {
            return None;
        }
        let body_start = i + scheme_len.unwrap_or(0);
        if scheme_len.is_none() && !self.matches_at_ignore_case(i, "www.") {
            // Bare domain: labels of letters, digits and '-', the last one a known TLD.
            let host_end = (i..end)
                .find(|&k| !(self.chars[k].is_alphanumeric() || matches!(self.chars[k], '.' | '-')))
                .unwrap_or(end);
            let host = self.text(i, host_end);
            let labels: Vec<&str> = host.split('.').collect();
            let tld = labels.last().map(|l| l.to_ascii_lowercase()).unwrap_or_default();
            let valid = labels.len() >= 2
                && labels.iter().all(|l| !l.is_empty())
                && TLDS.contains(&tld.as_str())
                && (host_end == end || self.at(host_end) == Some('/'));
            if !valid {
                return None;
            }
        }
        if body_start >= end {
            return None;
        }
        let mut body_end = end;
        if body_end > body_start + 1 && self.chars[body_end - 1] == '/' {
            body_end -= 1;
        }
        let mut words = String::new();
        if let (Some(len), true) = (scheme_len, self.options.read_url_scheme) {
            let scheme = self.text(i, i + len - 3);
            let letters: Vec<String> = scheme.chars().map(|c| c.to_string()).collect();
            words.push_str(&letters.join(" "));
            words.push_str(" colon slash slash ");
        }
        let body = self.text(body_start, body_end);
        match body.get(..4).filter(|p| p.eq_ignore_ascii_case("www.")) {
            Some(_) => words.push_str(&format!("w w w dot {}", read_address(&body[4..]))),
            None => words.push_str(&read_address(&body)),
        }
        Some(Replacement { end, words })
    }

    /// `jane.doe@example.org`.
    fn email(&self, i: usize) -> Option<Replacement> {
        if !self.is_word_start(i) || !self.is(i, char::is_alphanumeric) {
            return None;
        }
        let local_ok = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-');
        let mut at_sign = i;
        while self.is(at_sign, local_ok) {
            at_sign += 1;
        }
        if self.at(at_sign) != Some('@') {
            return None;
        }
        let mut end = at_sign + 1;
        while self.is(end, |c| c.is_alphanumeric() || matches!(c, '.' | '-')) {
            end += 1;
        }
        while end > at_sign + 1 && is_trailing_punct(self.chars[end - 1]) {
            end -= 1;
        }
        let domain = self.text(at_sign + 1, end);
        if !domain.contains('.') || domain.starts_with('.') {
            return None;
        }
        let words = format!(
            "{} at {}",
            read_address(&self.text(i, at_sign)),
            read_address(&domain)
        );
        Some(Replacement { end, words })
    }

    /// Phone numbers, read digit by digit in groups: `555-123-4567`, `(555) 123-4567`,
    /// `1-800-555-1234`, `+1 555 123 4567`, `+44 20 7946 0958`.
    fn phone(&self, i: usize) -> Option<Replacement> {
        if !self.is_word_start(i) {
            return None;
        }
        let groups = if self.at(i) == Some('+') {
            self.international_phone(i)?
        } else {
            self.north_american_phone(i)?
        };
        let (end, groups) = groups;
        if !self.is_word_end(end) {
            return None;
        }
        let spoken: Vec<String> = groups.iter().map(|g| digit_words(g)).collect();
        let mut words = spoken.join(", ");
        if self.at(i) == Some('+') {
            words.insert_str(0, "plus ");
        }
        Some(Replacement { end, words })
    }

    /// `+cc` then groups of 1–4 digits separated by one space or hyphen; 8–15 digits in all.
    fn international_phone(&self, i: usize) -> Option<(usize, Vec<String>)> {
        let (mut end, cc) = self.digit_run(i + 1, 1, 3)?;
        let mut groups = vec![cc];
        loop {
            if !self.is(end, |c| c == ' ' || c == '-') {
                break;
            }
            let Some((next_end, group)) = self.digit_run(end + 1, 1, 4) else {
                break;
            };
            groups.push(group);
            end = next_end;
        }
        let total: usize = groups.iter().map(String::len).sum();
        (groups.len() >= 3 && (8..=15).contains(&total)).then_some((end, groups))
    }

    /// `(ddd) ddd-dddd`, `ddd-ddd-dddd`, `ddd.ddd.dddd`, optionally after `1-`.
    fn north_american_phone(&self, i: usize) -> Option<(usize, Vec<String>)> {
        let mut groups = Vec::new();
        let mut j = i;
        if self.at(j) == Some('1') && self.is(j + 1, |c| c == '-' || c == '.') {
            groups.push("1".to_owned());
            j += 2;
        }
        let sep;
        if self.at(j) == Some('(') {
            let (end, area) = self.digit_run(j + 1, 3, 3)?;
            if self.at(end) != Some(')') {
                return None;
            }
            groups.push(area);
            j = self.skip_one_space(end + 1);
            sep = None;
        } else {
            let (end, area) = self.digit_run(j, 3, 3)?;
            let s = self.at(end).filter(|c| *c == '-' || *c == '.')?;
            groups.push(area);
            j = end + 1;
            sep = Some(s);
        }
        let (end, exchange) = self.digit_run(j, 3, 3)?;
        let s = self.at(end)?;
        let sep_ok = match sep {
            Some(expected) => s == expected,
            None => s == '-' || s == '.' || s == ' ',
        };
        if !sep_ok {
            return None;
        }
        let (end, line) = self.digit_run(end + 1, 4, 4)?;
        groups.push(exchange);
        groups.push(line);
        Some((end, groups))
    }

    /// `2024-03-15`.
    fn iso_date(&self, i: usize) -> Option<Replacement> {
        if !self.is_word_start(i) {
            return None;
        }
        let (end, year) = self.digit_run(i, 4, 4)?;
        if self.at(end) != Some('-') {
            return None;
        }
        let (end, month) = self.digit_run(end + 1, 2, 2)?;
        if self.at(end) != Some('-') {
            return None;
        }
        let (end, day) = self.digit_run(end + 1, 2, 2)?;
        if !self.is_word_end(end) {
            return None;
        }
        let words = valid_date(&year, &month, &day)?;
        Some(Replacement { end, words })
    }

    /// `3/15/2024`, `3/15/24` (in [`NormalizeOptions::date_order`]) and `15.03.2024` (day
    /// first). Two-digit years below 50 are 20xx, others 19xx.
    fn numeric_date(&self, i: usize) -> Option<Replacement> {
        if !self.is_word_start(i) {
            return None;
        }
        let (end, a) = self.digit_run(i, 1, 2)?;
        let sep = self.at(end).filter(|c| *c == '/' || *c == '.')?;
        let (end, b) = self.digit_run(end + 1, 1, 2)?;
        if self.at(end) != Some(sep) {
            return None;
        }
        let (end, mut year) = self.digit_run(end + 1, 2, 4)?;
        let bad_year = year.len() == 3 || (sep == '.' && year.len() != 4);
        if bad_year || !self.is_word_end(end) || self.at(end) == Some(sep) {
            return None;
        }
        if year.len() == 2 {
            let yy: u64 = year.parse().ok()?;
            year = (if yy < 50 { 2000 + yy } else { 1900 + yy }).to_string();
        }
        let day_first = sep == '.' || self.options.date_order == DateOrder::DayFirst;
        let (first, second) = if day_first { (&b, &a) } else { (&a, &b) };
        let words = valid_date(&year, first, second).or_else(|| valid_date(&year, second, first))?;
        Some(Replacement { end, words })
    }

    /// `3:30 pm`, `15:45`, `12:00`, `15:45:30`, `9am`, `9 p.m.`.
    fn time(&self, i: usize) -> Option<Replacement> {
        if !self.is_word_start(i) {
            return None;
        }
        let (hour_end, hour) = self.digit_run(i, 1, 2)?;
        let hour: u64 = hour.parse().ok()?;
        if self.at(hour_end) != Some(':') {
            let (end, am_pm) = self.am_pm(hour_end)?;
            if !(1..=12).contains(&hour) {
                return None;
            }
            return Some(Replacement {
                end,
                words: format!("{} {am_pm}", cardinal(hour)),
            });
        }
        let (mut end, minute) = self.digit_run(hour_end + 1, 2, 2)?;
        let minute: u64 = minute.parse().ok()?;
        let mut second = None;
        if self.at(end) == Some(':') {
            let (s_end, s) = self.digit_run(end + 1, 2, 2)?;
            second = Some(s.parse::<u64>().ok()?);
            end = s_end;
        }
        let am_pm = self.am_pm(end);
        if (am_pm.is_none() && !self.is_word_end(end)) || minute > 59 || second.is_some_and(|s| s > 59) {
            return None;
        }
        let valid_hour = match am_pm {
            Some(_) => (1..=12).contains(&hour),
            None => hour <= 23 || (hour == 24 && minute == 0),
        };
        if !valid_hour {
            return None;
        }
        let mut words = cardinal(hour);
        match (minute, am_pm.is_some()) {
            (0, true) => {}
            (0, false) if (1..=12).contains(&hour) => words.push_str(" o'clock"),
            (0, false) => words.push_str(" hundred"),
            (m, _) if m < 10 => words.push_str(&format!(" oh {}", ONES[m as usize])),
            (m, _) => words.push_str(&format!(" {}", below_hundred(m))),
        }
        if let Some(s) = second {
            let unit = if s == 1 { "second" } else { "seconds" };
            words.push_str(&format!(" and {} {unit}", cardinal(s)));
        }
        if let Some((am_pm_end, word)) = am_pm {
            words.push(' ');
            words.push_str(word);
            end = am_pm_end;
        }
        Some(Replacement { end, words })
    }

    /// `$5`, `$5.50`, `-$3`, `£1`, `€2.5 million`, `$1.2B`, `$5k`, `¥500`.
    fn money(&self, i: usize) -> Option<Replacement> {
        let negative = self.is(i, |c| c == '-' || c == '−') && self.is_word_start(i);
        let sign_at = if negative { i + 1 } else { i };
        let sign = self.at(sign_at)?;
        let &(_, unit, units, sub) = CURRENCIES.iter().find(|c| c.0 == sign)?;
        let amount = self.scan_number(sign_at + 1)?;
        let mut end = amount.end;
        let mut scale = None;
        if let Some((suffix, word)) = SCALE_SUFFIXES
            .iter()
            .find(|(s, _)| self.matches_at(end, s) && self.is_word_end(end + s.len()))
        {
            scale = Some(*word);
            end += suffix.len();
        } else if self.at(end) == Some(' ') {
            if let Some(word) = SCALE_WORDS
                .iter()
                .find(|w| self.matches_at(end + 1, w) && self.is_word_end(end + 1 + w.len()))
            {
                scale = Some(*word);
                end += 1 + word.len();
            }
        }
        let mut words = if negative {
            "minus ".to_owned()
        } else {
            String::new()
        };
        let frac_len = amount.frac.as_ref().map_or(0, String::len);
        match (scale, sub) {
            (Some(scale), _) => words.push_str(&format!("{} {scale} {units}", amount.words())),
            (None, Some((cent, cents))) if (1..=2).contains(&frac_len) => {
                let mut frac = amount.frac.clone().unwrap_or_default();
                if frac.len() == 1 {
                    frac.push('0');
                }
                let whole = NumberLiteral { frac: None, ..amount };
                let sub_value: u64 = frac.parse().ok()?;
                let main = format!("{} {}", whole.words(), if whole.is_one() { unit } else { units });
                let minor = format!(
                    "{} {}",
                    cardinal(sub_value),
                    if sub_value == 1 { cent } else { cents }
                );
                match (whole.integer() == Some(0), sub_value == 0) {
                    (true, false) => words.push_str(&minor),
                    (_, true) => words.push_str(&main),
                    (false, false) => words.push_str(&format!("{main} and {minor}")),
                }
            }
            _ => words.push_str(&format!(
                "{} {}",
                amount.words(),
                if amount.is_one() { unit } else { units }
            )),
        }
        Some(Replacement { end, words })
    }

    /// `1990s`, `1900s`, `'90s`, `80's`, `90s`.
    fn decade(&self, i: usize) -> Option<Replacement> {
        if !self.is_word_start(i) {
            return None;
        }
        let apostrophe = self.is(i, |c| c == '\'' || c == '’');
        let start = if apostrophe { i + 1 } else { i };
        let (mut end, digits) = self.digit_run(start, 2, 4)?;
        if digits.len() == 3 || !digits.ends_with('0') || (apostrophe && digits.len() != 2) {
            return None;
        }
        if self.is(end, |c| c == '\'' || c == '’') {
            end += 1;
        }
        if self.at(end) != Some('s') || !self.is_word_end(end + 1) {
            return None;
        }
        let value: u64 = digits.parse().ok()?;
        let words = match (digits.len(), value) {
            (2, 0) if apostrophe => "two thousands".to_owned(),
            (2, 0) => return None,
            (2, v) => plural_of(&below_hundred(v)),
            (_, v) if (1000..=2099).contains(&v) => plural_of(&year_words(v)),
            _ => return None,
        };
        Some(Replacement { end: end + 1, words })
    }

    /// `1st`, `22nd`, `103rd`, `4th` (suffix in any case, not checked against the number).
    fn ordinal(&self, i: usize) -> Option<Replacement> {
        if !self.is_digit(i) || (i > 0 && self.chars[i - 1].is_ascii_digit()) {
            return None;
        }
        let end = self.digits_end(i);
        let suffix_end = self.ordinal_suffix(end)?;
        Some(Replacement {
            end: suffix_end,
            words: ordinal_of(&integer_words(&self.text(i, end))),
        })
    }

    fn ordinal_suffix(&self, i: usize) -> Option<usize> {
        ["st", "nd", "rd", "th"]
            .iter()
            .any(|s| self.matches_at_ignore_case(i, s))
            .then_some(i + 2)
            .filter(|&end| self.is_word_end(end))
    }

    /// A month name at `i`, with an optional period after an abbreviation. Returns the end and
    /// the month number.
    fn month_at(&self, i: usize) -> Option<(usize, usize)> {
        if !self.is_word_start(i) {
            return None;
        }
        let mut end = i;
        while self.is(end, char::is_alphabetic) {
            end += 1;
        }
        let word = self.text(i, end);
        let month = month_number(&word)?;
        if word.len() <= 4 && MONTHS[month - 1] != word && self.at(end) == Some('.') {
            end += 1;
        }
        Some((end, month))
    }

    /// A year after a month or day: optional `,`, one space, four digits.
    fn year_after(&self, i: usize) -> Option<(usize, u64, bool)> {
        let comma = self.at(i) == Some(',');
        let j = if comma { i + 1 } else { i };
        if !self.is(j, |c| c == ' ') {
            return None;
        }
        let (end, digits) = self.digit_run(j + 1, 4, 4)?;
        let year: u64 = digits.parse().ok()?;
        (self.is_word_end(end) && (1000..=2099).contains(&year)).then_some((end, year, comma))
    }

    /// `March 15`, `March 15, 2024`, `Mar. 15th`, `March 2024`.
    fn month_date(&self, i: usize) -> Option<Replacement> {
        let (month_end, month) = self.month_at(i)?;
        if self.at(month_end) != Some(' ') {
            return None;
        }
        let number_start = month_end + 1;
        let number_end = self.digits_end(number_start);
        if number_end - number_start == 4 {
            // "March 2024": a month and a year.
            let year: u64 = self.text(number_start, number_end).parse().ok()?;
            if !self.is_word_end(number_end) || !(1000..=2099).contains(&year) {
                return None;
            }
            let words = format!("{} {}", MONTHS[month - 1], year_words(year));
            return Some(Replacement {
                end: number_end,
                words,
            });
        }
        let (mut end, day) = self.digit_run(number_start, 1, 2)?;
        if let Some(suffix_end) = self.ordinal_suffix(end) {
            end = suffix_end;
        }
        let day: u64 = day.parse().ok()?;
        if !self.is_word_end(end) || !(1..=31).contains(&day) {
            return None;
        }
        let (end, words) = match self.year_after(end) {
            Some((year_end, year, comma)) => (year_end, date_words(Some(year), month, day, comma)),
            None => (end, date_words(None, month, day, false)),
        };
        Some(Replacement { end, words })
    }

    /// `15 March 2024`, `15th of March`, `1 Jan.`.
    fn day_month_date(&self, i: usize) -> Option<Replacement> {
        if !self.is_word_start(i) {
            return None;
        }
        let (mut end, day) = self.digit_run(i, 1, 2)?;
        let day: u64 = day.parse().ok()?;
        if let Some(suffix_end) = self.ordinal_suffix(end) {
            end = suffix_end;
        }
        if !(1..=31).contains(&day) || self.at(end) != Some(' ') {
            return None;
        }
        let mut month_start = end + 1;
        if self.matches_at(month_start, "of ") {
            month_start += 3;
        }
        let (mut end, month) = self.month_at(month_start)?;
        let mut words = String::new();
        if !self
            .previous_word(i)
            .is_some_and(|w| w.eq_ignore_ascii_case("the"))
        {
            words.push_str("the ");
        }
        words.push_str(&format!(
            "{} of {}",
            ordinal_of(&cardinal(day)),
            MONTHS[month - 1]
        ));
        if let Some((year_end, year, comma)) = self.year_after(end) {
            words.push_str(if comma { ", " } else { " " });
            words.push_str(&year_words(year));
            end = year_end;
        }
        Some(Replacement { end, words })
    }

    /// `a/b` with 1–6 digits on each side and no third field: (end, numerator, denominator).
    fn slash_pair(&self, i: usize) -> Option<(usize, String, String)> {
        if !self.is_word_start(i) {
            return None;
        }
        let (slash, numerator) = self.digit_run(i, 1, 6)?;
        if self.at(slash) != Some('/') {
            return None;
        }
        let (end, denominator) = self.digit_run(slash + 1, 1, 6)?;
        (self.is_word_end(end) && self.at(end) != Some('/')).then_some((end, numerator, denominator))
    }

    /// `1/2`, `3/4`, `3/2`, `24/7`; other pairs are read "X slash Y".
    fn fraction(&self, i: usize) -> Option<Replacement> {
        let (end, numerator, denominator) = self.slash_pair(i)?;
        let words = match (numerator.parse::<u64>(), denominator.parse::<u64>()) {
            (Ok(24), Ok(7)) => Some("twenty-four seven".to_owned()),
            (Ok(n), Ok(d)) if n < d || d == 2 || d == 4 => fraction_words(n, d),
            _ => None,
        };
        let words = words.unwrap_or_else(|| {
            format!(
                "{} slash {}",
                integer_words(&numerator),
                integer_words(&denominator)
            )
        });
        Some(Replacement { end, words })
    }

    /// `.5` after whitespace or at the start: "point five".
    fn bare_decimal(&self, i: usize) -> Option<Replacement> {
        let starts =
            self.at(i) == Some('.') && self.is_digit(i + 1) && (i == 0 || self.chars[i - 1].is_whitespace());
        if !starts {
            return None;
        }
        let end = self.digits_end(i + 1);
        let mut words = format!("point {}", digit_words(&self.text(i + 1, end)));
        let mut end = end;
        if let Some((suffix_end, suffix)) = self.number_suffix(end, true) {
            words.push(' ');
            words.push_str(&suffix);
            end = suffix_end;
        }
        Some(Replacement { end, words })
    }

    /// Plain numbers and everything that hangs off one: `-7`, `1,234.5`, `1.2.3`, ranges
    /// (`1-5`, `10–12`, `1999-2005`), `1 1/2`, `50%`, `50¢`, `20°C`, `5 km`, years in context.
    fn number_expression(&self, i: usize) -> Option<Replacement> {
        let negative = self.is(i, |c| c == '-' || c == '−')
            && self.is_word_start(i)
            && self.is_digit(i + 1)
            && !self.is(i.wrapping_sub(1), |c| c == '-');
        let start = if negative { i + 1 } else { i };
        let first = self.scan_number(start)?;
        if let Some(r) = self.dotted_sequence(start, &first) {
            return Some(r);
        }
        let mut end = first.end;
        let mut words = String::new();
        if negative {
            words.push_str("minus ");
        }

        // A range "a-b": the second number must not be followed by another '-digit'.
        let mut second = None;
        if self.is(end, |c| c == '-' || c == '–') && self.is_digit(end + 1) {
            if let Some(b) = self.scan_number(end + 1) {
                let chained = self.is(b.end, |c| c == '-' || c == '–') && self.is_digit(b.end + 1);
                if !chained && self.is_word_end(b.end) {
                    second = Some(b);
                }
            }
        }
        let last = second.as_ref().unwrap_or(&first);
        match (
            &second,
            first.year(),
            second.as_ref().and_then(NumberLiteral::year),
        ) {
            (Some(_), Some(a), Some(b)) if b > a => {
                words.push_str(&format!("{} to {}", year_words(a), year_words(b)));
            }
            (Some(b), _, _) => words.push_str(&format!("{} to {}", first.words(), b.words())),
            (None, Some(year), _) if !negative && self.is_year_context(i, first.end) => {
                words.push_str(&year_words(year));
            }
            (None, _, _) => words.push_str(&first.words()),
        }
        end = last.end;
        let plural = second.is_some() || !last.is_one();

        // Mixed number "1 1/2": only a proper fraction joins the whole number.
        if second.is_none() && first.frac.is_none() && self.at(end) == Some(' ') {
            let proper = self.slash_pair(end + 1).and_then(|(pair_end, n, d)| {
                let (n, d) = (n.parse::<u64>().ok()?, d.parse::<u64>().ok()?);
                (n < d)
                    .then(|| fraction_words(n, d))
                    .flatten()
                    .map(|w| (pair_end, w))
            });
            if let Some((pair_end, fraction)) = proper {
                return Some(Replacement {
                    end: pair_end,
                    words: format!("{words} and {fraction}"),
                });
            }
        }
        if let Some((suffix_end, suffix)) = self.number_suffix(end, plural) {
            words.push(' ');
            words.push_str(&suffix);
            end = suffix_end;
        }
        Some(Replacement { end, words })
    }

    /// `1.2.3`, `192.168.0.1`: three or more dotted parts, read "one dot two dot three".
    fn dotted_sequence(&self, start: usize, first: &NumberLiteral) -> Option<Replacement> {
        if first.frac.is_none() || first.grouped || self.at(first.end) != Some('.') {
            return None;
        }
        if !self.is_digit(first.end + 1) {
            return None;
        }
        let mut parts = Vec::new();
        let mut j = start;
        loop {
            let end = self.digits_end(j);
            parts.push(integer_words(&self.text(j, end)));
            if self.at(end) == Some('.') && self.is_digit(end + 1) {
                j = end + 1;
            } else {
                return Some(Replacement {
                    end,
                    words: parts.join(" dot "),
                });
            }
        }
    }

    /// What may follow a number and is read with it: `%`, `¢`, `°`, `°C`, units.
    fn number_suffix(&self, i: usize, plural: bool) -> Option<(usize, String)> {
        let j = self.skip_one_space(i);
        match self.at(j)? {
            '%' => return Some((j + 1, "percent".to_owned())),
            '¢' if j == i => {
                return Some((j + 1, if plural { "cents" } else { "cent" }.to_owned()));
            }
            '°' if !self.is(j + 1, |c| c == 'C' || c == 'F') => {
                return Some((j + 1, if plural { "degrees" } else { "degree" }.to_owned()));
            }
            _ => {}
        }
        let (abbrev, singular, plural_name) = UNITS
            .iter()
            .filter(|(a, _, _)| self.matches_at(j, a))
            .max_by_key(|(a, _, _)| a.len())?;
        let end = j + abbrev.chars().count();
        if !self.is_word_end(end) || self.at(end) == Some('/') {
            return None;
        }
        Some((end, if plural { plural_name } else { singular }.to_string()))
    }

    /// Whether the 4-digit number `start..end` sits where a year is expected.
    fn is_year_context(&self, start: usize, end: usize) -> bool {
        if self.next_word(end).is_some_and(|w| ERAS.contains(&w.as_str())) {
            return true;
        }
        let Some(previous) = self.previous_word(start) else {
            return false;
        };
        if previous == "AD" || month_number(&previous).is_some() {
            return true;
        }
        let lower = previous.to_lowercase();
        if YEAR_CUES.contains(&lower.as_str()) {
            return true;
        }
        // The second year of a pair read as years: "in 1939 and 1945".
        if !YEAR_JOINERS.contains(&lower.as_str()) {
            return false;
        }
        let joiner_start = self.skip_back_whitespace(start) - previous.chars().count();
        let year_end = self.skip_back_whitespace(joiner_start);
        let year_start = year_end.saturating_sub(4);
        let is_year = self.digit_run(year_start, 4, 4).is_some_and(|(end, digits)| {
            end == year_end
                && self.is_word_start(year_start)
                && digits.parse::<u64>().is_ok_and(|y| (1000..=2099).contains(&y))
        });
        is_year && self.is_year_context(year_start, year_end)
    }

    fn skip_back_whitespace(&self, i: usize) -> usize {
        let mut j = i;
        while j > 0 && self.chars[j - 1].is_whitespace() {
            j -= 1;
        }
        j
    }

    /// `#1` → "number one".
    fn hash_number(&self, i: usize) -> Option<Replacement> {
        (self.at(i) == Some('#') && self.is_digit(i + 1)).then(|| Replacement {
            end: i + 1,
            words: "number".to_owned(),
        })
    }

    /// `No. 5` → "number five".
    fn number_abbreviation(&self, i: usize) -> Option<Replacement> {
        let ok = self.is_word_start(i)
            && self.matches_at(i, "No.")
            && self.at(i + 3) == Some(' ')
            && self.is_digit(i + 4);
        ok.then(|| Replacement {
            end: i + 3,
            words: "number".to_owned(),
        })
    }

    /// Abbreviations from [`ABBREVIATIONS`], plus `Dr.` and `St.` by context.
    fn abbreviation(&self, i: usize) -> Option<Replacement> {
        if !self.is_word_start(i) || !self.is(i, char::is_alphabetic) {
            return None;
        }
        let (len, words, kind) = if let Some(words) = self.street_or_title(i) {
            (3, words.0, words.1)
        } else {
            let (text, words, kind) = ABBREVIATIONS.iter().find(|(text, _, _)| {
                let lower = text.starts_with(|c: char| c.is_lowercase());
                self.matches_at(i, text)
                    || (lower && self.matches_at_ignore_case(i, text) && self.matches_at(i + 1, &text[1..]))
            })?;
            (text.chars().count(), *words, *kind)
        };
        let mut end = i + len;
        if !self.is_word_end(end) {
            return None;
        }
        let keep_period = match kind {
            AbbrevKind::Plain => self.sentence_ends_at(end),
            AbbrevKind::Prefix => self.line_ends_at(end),
        };
        if keep_period && self.chars[end - 1] == '.' {
            end -= 1;
        }
        Some(Replacement {
            end,
            words: words.to_owned(),
        })
    }

    /// `Dr.` is Drive and `St.` is Street after a capitalised word or a number when the next
    /// word is not capitalised ("Main St. is closed", "on Sunset Dr."); otherwise Doctor and
    /// Saint ("Dr. Smith", "St. Louis", "the Dr. said").
    fn street_or_title(&self, i: usize) -> Option<(&'static str, AbbrevKind)> {
        let (title, street) = if self.matches_at(i, "Dr.") {
            ("Doctor", "Drive")
        } else if self.matches_at(i, "St.") {
            ("Saint", "Street")
        } else {
            return None;
        };
        let after_name = self
            .previous_word(i)
            .is_some_and(|w| w.starts_with(|c: char| c.is_uppercase() || c.is_ascii_digit()));
        let before_name = self
            .next_word(i + 3)
            .is_some_and(|w| w.starts_with(char::is_uppercase));
        if after_name && !before_name {
            Some((street, AbbrevKind::Plain))
        } else {
            Some((title, AbbrevKind::Prefix))
        }
    }

    /// Symbols read as words: `&`, `+`, `=`, `@`, `%`, `×`, `±`, `°`, and `<`/`>` between words.
    fn symbol(&self, i: usize) -> Option<Replacement> {
        let c = self.at(i)?;
        let words = match c {
            '&' => "and",
            '+' => "plus",
            '=' => "equals",
            '@' => "at",
            '%' => "percent",
            '×' => "times",
            '±' => "plus or minus",
            '°' => "degrees",
            '<' | '>' => {
                let before = self.skip_back_one_space(i);
                let after = self.skip_one_space(i + 1);
                let between = before > 0
                    && self.chars[before - 1].is_alphanumeric()
                    && self.is(after, char::is_alphanumeric);
                if !between {
                    return None;
                }
                if c == '<' {
                    "less than"
                } else {
                    "greater than"
                }
            }
            _ => return None,
        };
        Some(Replacement {
            end: i + 1,
            words: words.to_owned(),
        })
    }

    fn skip_back_one_space(&self, i: usize) -> usize {
        if i > 0 && self.chars[i - 1] == ' ' {
            i - 1
        } else {
            i
        }
    }
}

/// A date from digit strings, or `None` when the month or day is out of range.
fn valid_date(year: &str, month: &str, day: &str) -> Option<String> {
    let year: u64 = year.parse().ok()?;
    let month: usize = month.parse().ok()?;
    let day: u64 = day.parse().ok()?;
    let valid = (1..=12).contains(&month) && (1..=31).contains(&day) && year >= 1000;
    valid.then(|| date_words(Some(year), month, day, true))
}

/// Reads a URL body or an email part: letter runs kept, digit runs digit by digit (a single
/// digit, or a run without a leading zero up to 2 digits, as a number), separators as words.
fn read_address(text: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut j = i + 1;
        if c.is_ascii_digit() {
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            let digits: String = chars[i..j].iter().collect();
            words.push(if digits.len() <= 2 && !digits.starts_with('0') {
                integer_words(&digits)
            } else {
                digit_words(&digits)
            });
        } else if c.is_alphanumeric() {
            while j < chars.len() && chars[j].is_alphanumeric() && !chars[j].is_ascii_digit() {
                j += 1;
            }
            words.push(chars[i..j].iter().collect());
        } else if let Some(word) = address_symbol(c) {
            words.push(word.to_owned());
        } else {
            words.push(c.to_string());
        }
        i = j;
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (input, expected spoken form), grouped by category.
    const CASES: &[(&str, &str)] = &[
        // Cardinals
        ("0", "zero"),
        ("7", "seven"),
        ("42", "forty-two"),
        ("100", "one hundred"),
        ("1,234", "one thousand two hundred thirty-four"),
        (
            "1234567",
            "one million two hundred thirty-four thousand five hundred sixty-seven",
        ),
        ("1000000", "one million"),
        ("-7", "minus seven"),
        ("It is -3 outside.", "It is minus three outside."),
        ("I have 3 cats.", "I have three cats."),
        ("5,000 people", "five thousand people"),
        ("1,2,3", "one,two,three"),
        ("007", "zero zero seven"),
        (
            "1234567890123456",
            "one two three four five six seven eight nine zero one two three four five six",
        ),
        // Decimals
        ("1.5", "one point five"),
        ("3.14", "three point one four"),
        ("0.05", "zero point zero five"),
        ("-1.5", "minus one point five"),
        ("version 1.2.3", "version one dot two dot three"),
        ("costs .5 more", "costs point five more"),
        ("It ended at 5.", "It ended at five."),
        // Money
        ("$5", "five dollars"),
        ("$5.50", "five dollars and fifty cents"),
        ("$1", "one dollar"),
        ("$1.01", "one dollar and one cent"),
        ("$0.50", "fifty cents"),
        ("$5.00", "five dollars"),
        ("$5.5", "five dollars and fifty cents"),
        ("£3", "three pounds"),
        ("£3.50", "three pounds and fifty pence"),
        ("€2.5 million", "two point five million euros"),
        ("$1.2B", "one point two billion dollars"),
        ("$5k", "five thousand dollars"),
        ("$1,000,000", "one million dollars"),
        ("¥500", "five hundred yen"),
        ("-$3", "minus three dollars"),
        ("50¢", "fifty cents"),
        ("It costs $3.50.", "It costs three dollars and fifty cents."),
        // Percentages
        ("50%", "fifty percent"),
        ("12.5%", "twelve point five percent"),
        ("10-20%", "ten to twenty percent"),
        // Dates
        ("2024-03-15", "March fifteenth, twenty twenty-four"),
        ("March 15, 2024", "March fifteenth, twenty twenty-four"),
        ("15 March 2024", "the fifteenth of March twenty twenty-four"),
        ("3/15/2024", "March fifteenth, twenty twenty-four"),
        ("12/25/2024", "December twenty-fifth, twenty twenty-four"),
        ("25/12/2024", "December twenty-fifth, twenty twenty-four"),
        ("15.03.2024", "March fifteenth, twenty twenty-four"),
        ("3/15/99", "March fifteenth, nineteen ninety-nine"),
        ("on the 4th of July", "on the fourth of July"),
        ("Jan. 5", "January fifth"),
        ("March 2024", "March twenty twenty-four"),
        // Times
        ("3:30 pm", "three thirty PM"),
        ("15:45", "fifteen forty-five"),
        ("12:00", "twelve o'clock"),
        ("9am", "nine AM"),
        ("9 a.m. today", "nine AM today"),
        ("at 10 p.m.", "at ten PM."),
        ("3:05", "three oh five"),
        ("15:00", "fifteen hundred"),
        ("3:00 PM", "three PM"),
        ("15:45:30", "fifteen forty-five and thirty seconds"),
        ("at 6:45pm today", "at six forty-five PM today"),
        // Ordinals
        ("1st", "first"),
        ("22nd", "twenty-second"),
        ("103rd", "one hundred third"),
        ("11th", "eleventh"),
        ("40th", "fortieth"),
        ("the 20th century", "the twentieth century"),
        // Years, only where a year is expected
        ("in 1999", "in nineteen ninety-nine"),
        ("1999 apples", "one thousand nine hundred ninety-nine apples"),
        ("in 2000", "in two thousand"),
        ("in 2005", "in two thousand five"),
        ("since 2010", "since twenty ten"),
        ("in 1905", "in nineteen oh five"),
        ("by 1900", "by nineteen hundred"),
        ("1066 AD", "ten sixty-six AD"),
        ("from 1999-2005", "from nineteen ninety-nine to two thousand five"),
        ("the 1900s", "the nineteen hundreds"),
        ("the 1990s", "the nineteen nineties"),
        ("the '90s", "the nineties"),
        ("the 2000s", "the two thousands"),
        (
            "between 1939 and 1945",
            "between nineteen thirty-nine and nineteen forty-five",
        ),
        ("Born 1950, died 2010.", "Born nineteen fifty, died twenty ten."),
        (
            "1939 and 1945",
            "one thousand nine hundred thirty-nine and one thousand nine hundred forty-five",
        ),
        // Phone numbers
        (
            "555-123-4567",
            "five five five, one two three, four five six seven",
        ),
        (
            "(555) 123-4567",
            "five five five, one two three, four five six seven",
        ),
        (
            "+1 555 123 4567",
            "plus one, five five five, one two three, four five six seven",
        ),
        (
            "1-800-555-1234",
            "one, eight zero zero, five five five, one two three four",
        ),
        (
            "Call 555.123.4567 now.",
            "Call five five five, one two three, four five six seven now.",
        ),
        // Abbreviations
        ("Dr. Smith", "Doctor Smith"),
        ("Mr. Jones", "Mister Jones"),
        ("Mrs. Jones", "Missus Jones"),
        ("St. Louis", "Saint Louis"),
        ("on Main St. today", "on Main Street today"),
        ("I live on Main St.", "I live on Main Street."),
        ("the Dr. said", "the Doctor said"),
        ("I called the Dr.", "I called the Doctor."),
        ("Sunset Dr. is closed", "Sunset Drive is closed"),
        ("apples, pears, etc.", "apples, pears, et cetera."),
        ("apples, etc. and more", "apples, et cetera and more"),
        ("fruit, e.g. apples", "fruit, for example apples"),
        ("so, i.e. this", "so, that is this"),
        ("Ali vs. Frazier", "Ali versus Frazier"),
        ("approx. 5 km", "approximately five kilometers"),
        ("No. 5", "number five"),
        // Units
        ("5 km", "five kilometers"),
        ("1 km", "one kilometer"),
        ("10 kg", "ten kilograms"),
        ("3 ft", "three feet"),
        ("20°C", "twenty degrees Celsius"),
        ("100 mph", "one hundred miles per hour"),
        ("2.5 GB", "two point five gigabytes"),
        // URLs and emails
        ("https://example.com/path", "example dot com slash path"),
        ("https://example.com/", "example dot com"),
        ("Visit www.example.com.", "Visit w w w dot example dot com."),
        (
            "see example.org/docs/v2.",
            "see example dot org slash docs slash v two.",
        ),
        ("jane.doe@example.org", "jane dot doe at example dot org"),
        (
            "Mail bob_smith42@mail.example.co.uk!",
            "Mail bob underscore smith forty-two at mail dot example dot co dot uk!",
        ),
        // Symbols
        ("A & B", "A and B"),
        ("AT&T", "AT and T"),
        ("1 + 1 = 2", "one plus one equals two"),
        ("#1", "number one"),
        ("C++", "C plus plus"),
        ("x < y", "x less than y"),
        // Ranges
        ("1-5", "one to five"),
        ("pages 10–12", "pages ten to twelve"),
        // Fractions
        ("1/2", "one half"),
        ("3/4", "three quarters"),
        ("2/3", "two thirds"),
        ("5/16", "five sixteenths"),
        ("1 1/2 cups", "one and one half cups"),
        ("24/7", "twenty-four seven"),
        ("7/3", "seven slash three"),
        // Letters and digits glued together
        ("COVID19", "COVID nineteen"),
        ("mp3", "mp three"),
        ("A4 paper", "A four paper"),
        // Left unchanged
        ("", ""),
        ("Hello, world!", "Hello, world!"),
        (
            "The quick brown fox jumps over the lazy dog.",
            "The quick brown fox jumps over the lazy dog.",
        ),
        ("Don't stop — keep going…", "Don't stop — keep going…"),
        ("Wait... what?!", "Wait... what?!"),
        ("naïve café 😀", "naïve café 😀"),
        ("Is it 'quoted'? (Yes.)", "Is it 'quoted'? (Yes.)"),
        ("May I come in?", "May I come in?"),
        ("group)—and", "group)—and"),
    ];

    #[test]
    fn table_of_spoken_forms() {
        let mut failures = Vec::new();
        for (input, expected) in CASES {
            let got = normalize_english(input);
            if got != *expected {
                failures.push(format!("{input:?}\n   want {expected:?}\n    got {got:?}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} cases differ:\n{}",
            failures.len(),
            CASES.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn disabled_returns_input_unchanged() {
        let options = NormalizeOptions {
            enabled: false,
            ..NormalizeOptions::default()
        };
        let text = "It costs $3.50 on 12/25/2024, Dr. Smith.";
        assert_eq!(normalize_english_with(text, &options), text);
    }

    #[test]
    fn url_scheme_is_read_when_asked() {
        let options = NormalizeOptions {
            read_url_scheme: true,
            ..NormalizeOptions::default()
        };
        assert_eq!(
            normalize_english_with("https://example.com", &options),
            "h t t p s colon slash slash example dot com"
        );
    }

    #[test]
    fn day_first_dates_when_asked() {
        let options = NormalizeOptions {
            date_order: DateOrder::DayFirst,
            ..NormalizeOptions::default()
        };
        assert_eq!(
            normalize_english_with("3/4/2024", &options),
            "April third, twenty twenty-four"
        );
        assert_eq!(normalize_english("3/4/2024"), "March fourth, twenty twenty-four");
    }

    #[test]
    fn every_integer_up_to_a_hundred_thousand_has_words_and_no_digits() {
        for n in 0..=100_000u64 {
            let words = normalize_english(&n.to_string());
            assert!(
                !words.is_empty() && !words.contains(|c: char| c.is_ascii_digit()),
                "{n}: {words}"
            );
        }
    }

    #[test]
    fn cardinal_scales() {
        assert_eq!(cardinal(1_000_001), "one million one");
        assert_eq!(cardinal(999_999_999_999_999), "nine hundred ninety-nine trillion nine hundred ninety-nine billion nine hundred ninety-nine million nine hundred ninety-nine thousand nine hundred ninety-nine");
        assert_eq!(year_words(2099), "twenty ninety-nine");
        assert_eq!(year_words(1000), "one thousand");
        assert_eq!(ordinal_of("ninety"), "ninetieth");
        assert_eq!(ordinal_of("one hundred"), "one hundredth");
    }

    /// A small deterministic generator (no `rand` dependency).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.next() as usize % items.len()]
        }
    }

    /// Plain words: none is an abbreviation, unit, month, cue or scale word, so each must come
    /// out unchanged.
    const PLAIN_WORDS: &[&str] = &[
        "apple", "river", "Zebra", "quietly", "sky", "Moon", "tree", "walked", "blue", "Paris", "x", "I",
        "nothing", "code", "seven",
    ];
    /// Pieces with digits and symbols, each of which must turn into words.
    const NUMERIC_PIECES: &[&str] = &[
        "42",
        "3.14",
        "1,234",
        "$5",
        "$5.50",
        "50%",
        "1st",
        "1999",
        "3:30",
        "555-123-4567",
        "1/2",
        "#1",
        "-7",
        "1990s",
        "2024-03-15",
        "3/15/2024",
        "1-5",
        "0",
        "007",
        "5 km",
        "9am",
        "€2.5 million",
        "+1 555 123 4567",
        "12:00",
        "103rd",
        "'90s",
        "1.2.3",
        "24/7",
        "&",
        "a@b.com",
        "https://x.org/a1",
        "e.g.",
        "Dr.",
        "St.",
        "(555) 123-4567",
    ];
    const SEPARATORS: &[&str] = &[" ", " ", " ", "", "\n", ", ", "-", "/", ".", ":"];
    const MARKS: &[&str] = &["!", "?", ";"];

    /// Random digit strings with random separators in between.
    fn random_digits(rng: &mut Lcg) -> String {
        let len = 1 + rng.next() as usize % 20;
        (0..len)
            .map(|_| {
                let r = rng.next() % 14;
                match r {
                    0..=9 => char::from(b'0' + r as u8),
                    10 => '.',
                    11 => ',',
                    12 => '-',
                    _ => '/',
                }
            })
            .collect()
    }

    /// Property: over many generated strings, no digit survives, every plain word survives in
    /// order as a whole word, `! ? ;` survive, and the result is deterministic.
    #[test]
    fn nothing_is_dropped_over_generated_inputs() {
        let mut rng = Lcg(0x5eed);
        for case in 0..5_000 {
            let mut input = String::new();
            let mut words = Vec::new();
            let mut marks = 0;
            for _ in 0..(1 + rng.next() % 12) {
                match rng.next() % 5 {
                    0 | 1 => {
                        let w = rng.pick(PLAIN_WORDS);
                        input.push(' ');
                        input.push_str(w);
                        input.push(' ');
                        words.push(w);
                    }
                    2 => input.push_str(rng.pick(NUMERIC_PIECES)),
                    3 => input.push_str(&random_digits(&mut rng)),
                    _ => {
                        input.push(' ');
                        input.push_str(rng.pick(MARKS));
                        input.push(' ');
                        marks += 1;
                    }
                }
                input.push_str(rng.pick(SEPARATORS));
            }
            let out = normalize_english(&input);
            assert_eq!(out, normalize_english(&input), "deterministic");
            assert!(
                !out.contains(|c: char| c.is_ascii_digit()),
                "case {case}: digits survived in {out:?} (from {input:?})"
            );
            let out_words: Vec<&str> = out
                .split(|c: char| !c.is_alphanumeric() && c != '\'')
                .filter(|w| !w.is_empty())
                .collect();
            let mut cursor = out_words.iter();
            for w in &words {
                assert!(
                    cursor.any(|o| o == w),
                    "case {case}: word {w:?} lost in {out:?} (from {input:?})"
                );
            }
            let out_marks = out.chars().filter(|c| matches!(c, '!' | '?' | ';')).count();
            assert!(
                out_marks >= marks,
                "case {case}: marks lost in {out:?} (from {input:?})"
            );
        }
    }

    /// Arbitrary characters (multi-byte, combining marks, controls) never panic, and the
    /// letters of the input all reach the output.
    #[test]
    fn arbitrary_text_keeps_its_letters() {
        let alphabet: Vec<char> =
            "aZé😀 \n\t.,;:!?-–—/\\@#$%&*()[]{}'\"“”0123456789°¢£€¥₹×±<>=+~_\u{301}\u{a0}"
                .chars()
                .collect();
        let mut rng = Lcg(42);
        for _ in 0..5_000 {
            let len = rng.next() as usize % 40;
            let input: String = (0..len)
                .map(|_| alphabet[rng.next() as usize % alphabet.len()])
                .collect();
            let out = normalize_english(&input);
            let letters = |s: &str| s.chars().filter(|c| matches!(c, 'Z' | 'é' | '😀')).count();
            assert!(letters(&out) >= letters(&input), "{input:?} -> {out:?}");
            assert!(
                !out.contains(|c: char| c.is_ascii_digit()),
                "{input:?} -> {out:?}"
            );
        }
    }
}
