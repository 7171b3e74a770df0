fn main() {
    println!("sembang: CLI coming in this commit series");
}
