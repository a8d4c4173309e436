mod issue_1145;
mod issue_1819;
mod issue_59;
