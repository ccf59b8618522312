// The location hash as state: both apps (field and head office) route on what follows '#'.
import { useEffect, useState } from 'preact/hooks';

export function useHash() {
  const [hash, setHash] = useState(globalThis.location.hash || '#/');
  useEffect(() => {
    const on = () => { setHash(globalThis.location.hash || '#/'); globalThis.scrollTo?.(0, 0); };
    globalThis.addEventListener('hashchange', on);
    return () => globalThis.removeEventListener('hashchange', on);
  }, []);
  return hash;
}
