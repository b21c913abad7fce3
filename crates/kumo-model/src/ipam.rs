//! IP address management inside one subnet, by AWS's rules:
//!
//! - the first four addresses and the last are reserved and never assigned;
//! - automatic assignment takes the next free address outside every subnet CIDR reservation,
//!   moving on from the last one it gave and wrapping round at the end, so a freed address is
//!   not handed straight back (a re-created interface gets a fresh address, as on AWS) and an
//!   address freed inside a reservation is never handed out again automatically;
//! - a requested address must lie in the subnet, not be reserved by AWS, and be free; it may lie
//!   inside an explicit reservation, which exists for exactly that;
//! - IPv4 prefixes are aligned /28s. Automatic prefix assignment takes a /28 in which nothing is
//!   used or reserved for another purpose, preferring those inside prefix-type reservations,
//!   and answers `InsufficientCidr` when none is left, even while single addresses remain;
//! - `AvailableIpAddressCount` is the size, less the five reserved, less what is in use.
//!
//! The state is a bitmap (8 KiB for a /16), so every operation is a short word scan.

use crate::cidr::Cidr;

/// The kind of a subnet CIDR reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// For addresses assigned by hand only.
    Explicit,
    /// For IPv4 prefixes (prefix delegation).
    Prefix,
}

/// Why an allocation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocError {
    /// No free address is left for automatic assignment.
    SubnetFull,
    /// No aligned free /28 is left.
    InsufficientCidr,
    /// The address or prefix is already assigned.
    InUse,
    /// The address or prefix is not inside the subnet.
    OutsideSubnet,
    /// The address is one of the five AWS keeps.
    AwsReserved,
    /// A prefix that is not an aligned /28.
    BadPrefix,
}

/// Addresses per IPv4 prefix.
pub const PREFIX_LEN: u8 = 28;
const PREFIX_SIZE: usize = 16;

/// The addresses of one subnet.
#[derive(Debug, Clone)]
pub struct SubnetIps {
    cidr: Cidr,
    used: Vec<u64>,
    explicit: Vec<u64>,
    prefixes: Vec<u64>,
    in_use: u64,
    /// Where the next automatic pick starts looking (an offset).
    next: usize,
}

fn words(size: u64) -> usize {
    size.div_ceil(64) as usize
}

fn get(bits: &[u64], i: usize) -> bool {
    bits[i / 64] >> (i % 64) & 1 == 1
}

fn set(bits: &mut [u64], i: usize, v: bool) {
    if v {
        bits[i / 64] |= 1 << (i % 64);
    } else {
        bits[i / 64] &= !(1 << (i % 64));
    }
}

/// The 16 bits of /28 chunk `c` (chunk c covers offsets 16c..16c+16).
fn chunk(bits: &[u64], c: usize) -> u64 {
    bits[c / 4] >> ((c % 4) * 16) & 0xffff
}

impl SubnetIps {
    /// A subnet with nothing in use and no reservations.
    pub fn new(cidr: Cidr) -> SubnetIps {
        let n = words(cidr.size());
        SubnetIps {
            cidr,
            used: vec![0; n],
            explicit: vec![0; n],
            prefixes: vec![0; n],
            in_use: 0,
            next: 0,
        }
    }

    pub fn cidr(&self) -> Cidr {
        self.cidr
    }

    fn size(&self) -> usize {
        self.cidr.size() as usize
    }

    fn offset(&self, addr: u32) -> Option<usize> {
        self.cidr
            .contains_addr(addr)
            .then(|| (addr - self.cidr.base()) as usize)
    }

    /// AWS keeps the network address, the next three (router, DNS, future use) and the last.
    pub fn is_aws_reserved(&self, addr: u32) -> bool {
        match self.offset(addr) {
            Some(o) => o < 4 || o == self.size() - 1,
            None => false,
        }
    }

    fn aws_reserved_offset(&self, o: usize) -> bool {
        o < 4 || o == self.size() - 1
    }

    /// Adds a reservation. Reservations do not change what is in use.
    pub fn reserve(&mut self, cidr: Cidr, kind: Reservation) {
        let Some(start) = self.offset(cidr.base()) else {
            return;
        };
        let end = (start as u64 + cidr.size()).min(self.size() as u64) as usize;
        let bits = match kind {
            Reservation::Explicit => &mut self.explicit,
            Reservation::Prefix => &mut self.prefixes,
        };
        for o in start..end {
            set(bits, o, true);
        }
    }

    /// Usable addresses not in use: `AvailableIpAddressCount`.
    pub fn available(&self) -> u64 {
        (self.cidr.size().saturating_sub(5)).saturating_sub(self.in_use)
    }

    pub fn in_use(&self) -> u64 {
        self.in_use
    }

    pub fn is_used(&self, addr: u32) -> bool {
        self.offset(addr).is_some_and(|o| get(&self.used, o))
    }

    /// Whether the address lies in a reservation (of either kind).
    pub fn is_in_reservation(&self, addr: u32) -> bool {
        self.offset(addr)
            .is_some_and(|o| get(&self.explicit, o) || get(&self.prefixes, o))
    }

    /// Marks an address as in use; the state the store already holds (no checks but range).
    /// Automatic picks continue after the highest address marked outside the reservations.
    pub fn mark(&mut self, addr: u32) {
        if let Some(o) = self.offset(addr) {
            if !get(&self.used, o) {
                set(&mut self.used, o, true);
                self.in_use += 1;
            }
            if !get(&self.explicit, o) && !get(&self.prefixes, o) {
                self.next = self.next.max(o + 1);
            }
        }
    }

    /// Takes a requested address.
    pub fn claim(&mut self, addr: u32) -> Result<(), AllocError> {
        let o = self.offset(addr).ok_or(AllocError::OutsideSubnet)?;
        if self.aws_reserved_offset(o) {
            return Err(AllocError::AwsReserved);
        }
        if get(&self.used, o) {
            return Err(AllocError::InUse);
        }
        set(&mut self.used, o, true);
        self.in_use += 1;
        Ok(())
    }

    /// Offsets that automatic assignment may not take, for one word of the bitmap.
    fn blocked(&self, w: usize) -> u64 {
        let mut blocked = self.used[w] | self.explicit[w] | self.prefixes[w];
        if w == 0 {
            blocked |= 0b1111;
        }
        let last = self.size() - 1;
        if last / 64 == w {
            blocked |= 1 << (last % 64);
            if last % 64 != 63 {
                blocked |= u64::MAX << (last % 64 + 1);
            }
        }
        blocked
    }

    /// Takes the next free address outside every reservation, starting after the last one
    /// given and wrapping round.
    pub fn pick(&mut self) -> Result<u32, AllocError> {
        let n = self.used.len();
        let start = self.next.min(self.size() - 1);
        let sw = start / 64;
        let below_start = (1u64 << (start % 64)) - 1;
        let found = (sw..n)
            .map(|w| (w, self.blocked(w) | if w == sw { below_start } else { 0 }))
            .chain((0..=sw).map(|w| (w, self.blocked(w))))
            .find(|(_, b)| *b != u64::MAX);
        let Some((w, b)) = found else {
            return Err(AllocError::SubnetFull);
        };
        let o = w * 64 + b.trailing_ones() as usize;
        set(&mut self.used, o, true);
        self.in_use += 1;
        self.next = o + 1;
        Ok(self.cidr.base() + o as u32)
    }

    /// Gives an address back.
    pub fn release(&mut self, addr: u32) {
        if let Some(o) = self.offset(addr) {
            if get(&self.used, o) {
                set(&mut self.used, o, false);
                self.in_use -= 1;
            }
        }
    }

    fn chunks(&self) -> usize {
        self.size() / PREFIX_SIZE
    }

    /// Whether /28 chunk `c` holds an AWS-reserved address.
    fn chunk_has_aws_reserved(&self, c: usize) -> bool {
        c == 0 || c == self.chunks() - 1
    }

    fn prefix_chunk(&self, p: Cidr) -> Result<usize, AllocError> {
        if p.prefix_len() != PREFIX_LEN {
            return Err(AllocError::BadPrefix);
        }
        let o = self.offset(p.base()).ok_or(AllocError::OutsideSubnet)?;
        Ok(o / PREFIX_SIZE)
    }

    fn take_chunk(&mut self, c: usize) -> Cidr {
        let w = c / 4;
        self.used[w] |= 0xffff << ((c % 4) * 16);
        self.in_use += PREFIX_SIZE as u64;
        let base = self.cidr.base() + (c * PREFIX_SIZE) as u32;
        Cidr::new(base, PREFIX_LEN).unwrap_or(self.cidr)
    }

    /// Takes a requested /28 prefix.
    pub fn claim_prefix(&mut self, p: Cidr) -> Result<(), AllocError> {
        let c = self.prefix_chunk(p)?;
        if self.cidr.prefix_len() > PREFIX_LEN || self.chunk_has_aws_reserved(c) {
            return Err(AllocError::AwsReserved);
        }
        if chunk(&self.used, c) != 0 {
            return Err(AllocError::InUse);
        }
        self.take_chunk(c);
        Ok(())
    }

    /// Takes a free aligned /28: first inside prefix reservations, then anywhere free and not
    /// reserved for explicit use.
    pub fn pick_prefix(&mut self) -> Result<Cidr, AllocError> {
        if self.cidr.prefix_len() > PREFIX_LEN {
            return Err(AllocError::InsufficientCidr);
        }
        let free = |s: &Self, c: usize| {
            !s.chunk_has_aws_reserved(c) && chunk(&s.used, c) == 0 && chunk(&s.explicit, c) == 0
        };
        let chunks = self.chunks();
        if let Some(c) = (0..chunks).find(|&c| free(self, c) && chunk(&self.prefixes, c) == 0xffff)
        {
            return Ok(self.take_chunk(c));
        }
        match (0..chunks).find(|&c| free(self, c)) {
            Some(c) => Ok(self.take_chunk(c)),
            None => Err(AllocError::InsufficientCidr),
        }
    }

    /// Gives a /28 back.
    pub fn release_prefix(&mut self, p: Cidr) {
        if let Ok(c) = self.prefix_chunk(p) {
            for i in 0..PREFIX_SIZE {
                let o = c * PREFIX_SIZE + i;
                if get(&self.used, o) {
                    set(&mut self.used, o, false);
                    self.in_use -= 1;
                }
            }
        }
    }

    /// Every aligned /28 that prefix delegation could take now: no address used, none
    /// reserved by AWS, none in an explicit reservation.
    pub fn free_prefixes(&self) -> Vec<Cidr> {
        if self.cidr.prefix_len() > PREFIX_LEN {
            return Vec::new();
        }
        (0..self.chunks())
            .filter(|&c| {
                !self.chunk_has_aws_reserved(c)
                    && chunk(&self.used, c) == 0
                    && chunk(&self.explicit, c) == 0
            })
            .filter_map(|c| Cidr::new(self.cidr.base() + (c * PREFIX_SIZE) as u32, PREFIX_LEN))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cidr::parse_addr;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn c(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }
    fn a(s: &str) -> u32 {
        parse_addr(s).unwrap()
    }

    #[test]
    fn skips_the_five_reserved() {
        let mut s = SubnetIps::new(c("10.0.1.0/28"));
        assert_eq!(s.available(), 11);
        let picked: Vec<u32> = (0..11).map(|_| s.pick().unwrap()).collect();
        assert_eq!(picked.first(), Some(&a("10.0.1.4")));
        assert_eq!(picked.last(), Some(&a("10.0.1.14")));
        assert_eq!(s.pick(), Err(AllocError::SubnetFull));
        assert_eq!(s.available(), 0);
        assert_eq!(s.claim(a("10.0.1.0")), Err(AllocError::AwsReserved));
        assert_eq!(s.claim(a("10.0.1.15")), Err(AllocError::AwsReserved));
        assert_eq!(s.claim(a("10.0.2.5")), Err(AllocError::OutsideSubnet));
    }

    #[test]
    fn reservations_are_skipped_by_automatic_assignment() {
        let mut s = SubnetIps::new(c("10.0.0.0/24"));
        s.reserve(c("10.0.0.0/26"), Reservation::Explicit);
        assert_eq!(s.pick().unwrap(), a("10.0.0.64"));
        // A requested address may lie inside an explicit reservation.
        s.claim(a("10.0.0.10")).unwrap();
        assert_eq!(s.claim(a("10.0.0.10")), Err(AllocError::InUse));
        // Freed inside the reservation: not handed out automatically.
        s.release(a("10.0.0.10"));
        assert_eq!(s.pick().unwrap(), a("10.0.0.65"));
    }

    #[test]
    fn prefixes_prefer_prefix_reservations() {
        let mut s = SubnetIps::new(c("10.0.0.0/24"));
        s.reserve(c("10.0.0.128/27"), Reservation::Prefix);
        assert_eq!(s.pick_prefix().unwrap(), c("10.0.0.128/28"));
        assert_eq!(s.pick_prefix().unwrap(), c("10.0.0.144/28"));
        // Then anything free: the first /28 holds reserved addresses, so the second.
        assert_eq!(s.pick_prefix().unwrap(), c("10.0.0.16/28"));
        assert_eq!(s.available(), 251 - 48);
        // Single addresses never come out of a prefix reservation.
        s.release_prefix(c("10.0.0.128/28"));
        assert!(!c("10.0.0.128/27").contains_addr(s.pick().unwrap()));
    }

    #[test]
    fn fragmentation_gives_insufficient_cidr_while_addresses_remain() {
        let mut s = SubnetIps::new(c("10.0.0.0/24"));
        // One address in every /28.
        for chunk in 0..16u32 {
            let _ = s.claim(a("10.0.0.0") + chunk * 16 + 5);
        }
        assert_eq!(s.pick_prefix(), Err(AllocError::InsufficientCidr));
        assert!(s.available() > 200);
        assert!(s.free_prefixes().is_empty());
        s.release(a("10.0.0.37"));
        assert_eq!(s.free_prefixes(), vec![c("10.0.0.32/28")]);
        assert_eq!(s.pick_prefix().unwrap(), c("10.0.0.32/28"));
    }

    #[test]
    fn explicit_reservations_block_prefixes() {
        let mut s = SubnetIps::new(c("10.0.0.0/26"));
        s.reserve(c("10.0.0.16/28"), Reservation::Explicit);
        s.reserve(c("10.0.0.32/28"), Reservation::Explicit);
        assert_eq!(s.pick_prefix(), Err(AllocError::InsufficientCidr));
        assert_eq!(s.claim_prefix(c("10.0.0.16/28")), Ok(()));
        assert_eq!(
            s.claim_prefix(c("10.0.0.0/28")),
            Err(AllocError::AwsReserved)
        );
        assert_eq!(
            s.claim_prefix(c("10.0.0.40/29")),
            Err(AllocError::BadPrefix)
        );
    }

    #[test]
    fn freed_addresses_are_not_handed_straight_back() {
        let mut s = SubnetIps::new(c("10.0.0.0/28"));
        let first = s.pick().unwrap();
        s.release(first);
        assert_ne!(s.pick().unwrap(), first);
        // Once the end is reached, the search wraps round to the freed address.
        while s.pick().is_ok() {}
        assert!(s.is_used(first));
        // A rebuilt allocator continues after the highest address in use.
        let mut r = SubnetIps::new(c("10.0.0.0/24"));
        r.mark(a("10.0.0.40"));
        assert_eq!(r.pick().unwrap(), a("10.0.0.41"));
    }

    #[test]
    fn large_subnet_last_address() {
        let mut s = SubnetIps::new(c("10.0.0.0/16"));
        assert_eq!(s.available(), 65531);
        assert_eq!(s.claim(a("10.0.255.255")), Err(AllocError::AwsReserved));
        assert!(s.claim(a("10.0.255.254")).is_ok());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Pick,
        Claim(u32),
        PickPrefix,
        ClaimPrefix(u32),
        Release(usize),
        Reserve(u32, u8, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Pick),
            2 => (0u32..256).prop_map(Op::Claim),
            2 => Just(Op::PickPrefix),
            1 => (0u32..16).prop_map(Op::ClaimPrefix),
            3 => (0usize..1000).prop_map(Op::Release),
            1 => (0u32..256, 26u8..=30, any::<bool>()).prop_map(|(o, l, e)| Op::Reserve(o, l, e)),
        ]
    }

    proptest! {
        /// Over random operation sequences: nothing is held twice, the reserved five are never
        /// assigned, automatic picks avoid reservations, and the count is exact.
        #[test]
        fn allocator_invariants(ops in prop::collection::vec(op(), 1..300)) {
            let subnet = c("10.0.0.0/24");
            let base = subnet.base();
            let mut s = SubnetIps::new(subnet);
            let mut held: Vec<(u32, u8)> = Vec::new(); // (base, 32 or 28)
            let mut addrs: BTreeSet<u32> = BTreeSet::new();
            let mut reservations: Vec<Cidr> = Vec::new();
            for op in ops {
                match op {
                    Op::Pick => if let Ok(x) = s.pick() {
                        prop_assert!(!reservations.iter().any(|r| r.contains_addr(x)), "picked inside a reservation");
                        prop_assert!(addrs.insert(x), "picked a held address");
                        held.push((x, 32));
                    },
                    Op::Claim(o) => if s.claim(base + o).is_ok() {
                        prop_assert!(addrs.insert(base + o), "claimed a held address");
                        held.push((base + o, 32));
                    },
                    Op::PickPrefix | Op::ClaimPrefix(_) => {
                        let r = match op {
                            Op::ClaimPrefix(ch) => Cidr::new(base + ch * 16, 28).map(|p| s.claim_prefix(p).map(|_| p)).unwrap(),
                            _ => s.pick_prefix(),
                        };
                        if let Ok(p) = r {
                            prop_assert_eq!(p.base() % 16, 0);
                            for x in p.base()..=p.last() {
                                prop_assert!(addrs.insert(x), "prefix overlaps a held address");
                            }
                            held.push((p.base(), 28));
                        }
                    }
                    Op::Release(i) => if !held.is_empty() {
                        let (x, l) = held.remove(i % held.len());
                        if l == 32 {
                            s.release(x);
                            addrs.remove(&x);
                        } else {
                            let p = Cidr::new(x, 28).unwrap();
                            s.release_prefix(p);
                            for y in p.base()..=p.last() { addrs.remove(&y); }
                        }
                    },
                    Op::Reserve(o, l, explicit) => {
                        let b = (base + o) & crate::cidr::mask(l);
                        let r = Cidr::new(b, l).unwrap();
                        s.reserve(r, if explicit { Reservation::Explicit } else { Reservation::Prefix });
                        reservations.push(r);
                    }
                }
                for x in &addrs {
                    prop_assert!(!s.is_aws_reserved(*x), "AWS-reserved address assigned");
                    prop_assert!(s.is_used(*x));
                }
                prop_assert_eq!(s.available(), 256 - 5 - addrs.len() as u64);
            }
        }
    }
}
