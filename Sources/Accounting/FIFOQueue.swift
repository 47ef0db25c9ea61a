/// A first-in first-out queue over an array with a moving head: O(1)
/// amortised append and pop, storage compacted as the head advances.
struct FIFOQueue<Element> {
  private var storage: [Element] = []
  private var head = 0

  /// Number of queued elements.
  var count: Int { storage.count - head }
  /// True when nothing is queued.
  var isEmpty: Bool { head == storage.count }
  /// The oldest element.
  var first: Element? { isEmpty ? nil : storage[head] }

  /// Queues `element` last.
  mutating func append(_ element: Element) {
    storage.append(element)
  }

  /// Removes and returns the oldest element.
  mutating func popFirst() -> Element? {
    guard !isEmpty else { return nil }
    let element = storage[head]
    head += 1
    if head == storage.count {
      storage.removeAll(keepingCapacity: storage.capacity <= 1024)
      head = 0
    } else if head >= 1024, head * 2 >= storage.count {
      storage.removeFirst(head)
      head = 0
    }
    return element
  }

  /// Removes and returns the first element matching `predicate` (O(n)).
  mutating func removeFirst(where predicate: (Element) -> Bool) -> Element? {
    guard let index = storage[head...].firstIndex(where: predicate) else { return nil }
    return storage.remove(at: index)
  }

  /// Removes and returns everything, oldest first.
  mutating func removeAll() -> [Element] {
    let all = Array(storage[head...])
    storage = []
    head = 0
    return all
  }

  /// The queued elements, oldest first.
  var elements: ArraySlice<Element> { storage[head...] }
}

extension FIFOQueue: Sendable where Element: Sendable {}
