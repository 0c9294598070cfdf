//! Layout of the tree: aligned columns, and a table whose first column is a tree drawn with
//! box characters (`├──`, `└──`). Widths are measured on the text before colouring. Pure.

use super::text::{Color, Style};

/// A row of the tree table (NAME, KIND, STATUS, AGE, INFO) and the rows below it.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub cells: [String; 5],
    /// Colour of the STATUS cell.
    pub status_color: Color,
    pub children: Vec<Node>,
}

impl Node {
    pub fn leaf(cells: [String; 5]) -> Node {
        Node {
            cells,
            status_color: Color::None,
            children: Vec::new(),
        }
    }

    pub fn color(mut self, color: Color) -> Node {
        self.status_color = color;
        self
    }

    pub fn with(mut self, children: Vec<Node>) -> Node {
        self.children = children;
        self
    }
}

/// The nodes as a table under `header`, the first column indented as a tree.
pub(crate) fn tree(header: [&str; 5], nodes: &[Node], style: Style) -> Vec<String> {
    let mut rows: Vec<[String; 5]> = vec![header.map(String::from)];
    let mut colors = vec![Color::Bold];
    fn walk(
        nodes: &[Node],
        prefix: &str,
        top: bool,
        rows: &mut Vec<[String; 5]>,
        colors: &mut Vec<Color>,
    ) {
        for (i, node) in nodes.iter().enumerate() {
            let last = i + 1 == nodes.len();
            let (branch, below) = match (top, last) {
                (true, _) => ("", ""),
                (false, false) => ("├── ", "│   "),
                (false, true) => ("└── ", "    "),
            };
            let mut cells = node.cells.clone();
            cells[0] = format!("{prefix}{branch}{}", cells[0]);
            rows.push(cells);
            colors.push(node.status_color);
            walk(
                &node.children,
                &format!("{prefix}{below}"),
                false,
                rows,
                colors,
            );
        }
    }
    walk(nodes, "", true, &mut rows, &mut colors);
    columns(
        &rows,
        |row, col| match (row, col) {
            (0, _) => Color::Bold,
            (_, 2) => colors[row],
            _ => Color::None,
        },
        style,
    )
}

/// Rows as aligned columns (two spaces apart, the last one not padded); `color(row, col)`
/// says how to paint each cell.
pub(crate) fn columns<const N: usize>(
    rows: &[[String; N]],
    color: impl Fn(usize, usize) -> Color,
    style: Style,
) -> Vec<String> {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    rows.iter()
        .enumerate()
        .map(|(r, row)| {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                let text = if c + 1 == N {
                    cell.clone()
                } else {
                    format!("{cell}{}  ", " ".repeat(widths[c] - cell.chars().count()))
                };
                let painted = style.paint(color(r, c), cell);
                line.push_str(&text.replacen(cell.as_str(), &painted, 1));
            }
            line.trim_end().to_string()
        })
        .collect()
}
