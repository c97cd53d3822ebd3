fn main() {
    println!("{}", cnnergy::ptx::SM80.len());
}
